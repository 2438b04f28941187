// Scaffold by the lead so the rest type-checks; helper-4 (gateway) replaces this whole file.
import type { StaticFormOptions } from './staticForm.ts';

export function renderStaticFormPage(args: { options: StaticFormOptions; runId: string }): string {
  return `<!doctype html><title>${args.runId}</title><p>${(args.options.fields ?? []).length} fields</p>`;
}
