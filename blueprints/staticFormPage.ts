/**
 * The task page of the `static-form` blueprint, rendered once per run by the gateway.
 *
 * The form (from the run's `fields`, or the run's custom HTML `template`) is rendered here; the
 * unit's data arrives over the WebSocket and is filled in by gateway/assets/static-form.js, which
 * also drives the page's states through `data-state` on <body>: connecting, onboarding (the run's
 * onboarding form, when the worker has not passed it yet), waiting, working, submitting, submitted,
 * no_work (with the refusal reason), reconnecting, ended, error.
 *
 * Custom templates: the file's HTML goes inside the page's <form>; its named inputs are submitted
 * as they are; text `{{key}}` and elements with `data-hitloop-field="key"` show the unit's data.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { StaticFormField, StaticFormOptions } from './staticForm.ts';

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function labelOf(field: StaticFormField): string {
  return field.label ?? field.name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function renderField(field: StaticFormField, idPrefix = 'hl-field-'): string {
  const id = `${idPrefix}${field.name}`;
  const name = escapeHtml(field.name);
  const common = `id="${id}" name="${name}" data-type="${field.type}" data-required="${field.required}"`;
  const required = field.required && field.type !== 'checkbox' ? ' required' : '';
  const label = `<label for="${id}">${escapeHtml(labelOf(field))}${field.required && field.type !== 'checkbox' ? ' <span class="hl-required" aria-hidden="true">*</span>' : ''}</label>`;
  switch (field.type) {
    case 'textarea':
      return `<div class="hl-field">${label}<textarea ${common} rows="5" maxlength="${field.max_length}"${required}></textarea></div>`;
    case 'number':
      return `<div class="hl-field">${label}<input type="number" step="any" ${common}${required}></div>`;
    case 'checkbox':
      return `<div class="hl-field hl-checkbox"><input type="checkbox" ${common}>${label}</div>`;
    case 'select': {
      const options = (field.options ?? []).map((o) => `<option value="${escapeHtml(o)}">${escapeHtml(o)}</option>`).join('');
      return `<div class="hl-field">${label}<select ${common}${required}><option value="">Choose…</option>${options}</select></div>`;
    }
    default:
      return `<div class="hl-field">${label}<input type="text" ${common} maxlength="${field.max_length}"${required}></div>`;
  }
}

/** The custom template's HTML; a relative path is taken from the gateway's working directory. */
function readTemplate(file: string): string {
  const resolved = path.resolve(file);
  try {
    return readFileSync(resolved, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read the static-form template ${resolved} (blueprint.template): ${(err as Error).message}; ` +
        'give an absolute path, or start the gateway in the directory the path is relative to',
      { cause: err },
    );
  }
}

export function renderStaticFormPage({ options, runId }: { options: StaticFormOptions; runId: string }): string {
  const template = options.template ? readTemplate(options.template) : null;
  const formBody = template !== null ? `<div id="hl-template">${template}</div>` : (options.fields ?? []).map((f) => renderField(f)).join('\n');
  const onboarding = options.onboarding
    ? `<form id="hl-onboarding-form" class="hl-form hl-when-onboarding" autocomplete="off">
    <p class="hl-onboarding-intro">Before you start, answer these questions. They decide whether this task is open to you.</p>
${options.onboarding.fields.map((f) => renderField(f, 'hl-ob-field-')).join('\n')}
    <p id="hl-onboarding-error" class="hl-form-error" role="alert"></p>
    <div class="hl-actions"><button type="submit" id="hl-onboarding-submit">Submit answers</button></div>
  </form>`
    : '';
  const instructions = options.instructions
    ? `<section id="hl-instructions" class="hl-instructions">${escapeHtml(options.instructions).replace(/\n/g, '<br>')}</section>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Task</title>
<link rel="stylesheet" href="/assets/hitloop.css">
</head>
<body data-state="connecting" data-run-id="${escapeHtml(runId)}" data-template="${template ? 'custom' : 'fields'}">
<main class="hl-page">
  <header class="hl-header">
    <h1>Task</h1>
    <p id="hl-status" class="hl-status" role="status" aria-live="polite">Connecting…</p>
  </header>
  ${instructions}
  <section id="hl-message" class="hl-message" aria-live="polite"></section>
  <section id="hl-unit" class="hl-unit hl-when-assigned">
    <dl id="hl-data" class="hl-data"></dl>
  </section>
  ${onboarding}
  <form id="hl-form" class="hl-form hl-when-assigned" autocomplete="off">
${formBody}
    <p id="hl-form-error" class="hl-form-error" role="alert"></p>
    <div class="hl-actions">
      <button type="submit" id="hl-submit">Submit</button>
      <button type="button" id="hl-return" class="hl-secondary">Return this unit</button>
    </div>
  </form>
  <div class="hl-actions hl-when-idle">
    <button type="button" id="hl-more">Look for work again</button>
  </div>
</main>
<script type="module" src="/assets/static-form.js"></script>
</body>
</html>
`;
}
