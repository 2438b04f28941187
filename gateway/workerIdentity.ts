/**
 * Who a connecting worker is, read from the query parameters of their task link by the run's
 * provider. A provider that can say so implements `identifyWorker`; the `mock` provider (tests,
 * demos) trusts a plain `worker_id` parameter. Any other provider without it is refused, so a
 * production provider never falls back to trusting an unsigned parameter.
 */
import type { CrowdProvider } from '../providers/types.ts';

export interface WorkerIdentityRequest {
  runId: string;
  /** The task link's query parameters, as the page sent them. */
  params: Readonly<Record<string, string>>;
  /** The secret of the settings, for providers whose links are signed. */
  secret: string;
}

export type WorkerIdentity = { ok: true; providerWorkerId: string } | { ok: false; message: string };

/** What a provider adds to take part in registration through the gateway. */
export interface WorkerIdentityReader {
  identifyWorker(request: WorkerIdentityRequest): WorkerIdentity;
}

const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,199}$/;

/** A provider worker id as links carry it: letters, digits and `._@:+-`, at most 200 characters. */
export function isValidProviderWorkerId(id: string): boolean {
  return WORKER_ID.test(id);
}

function mockIdentity({ params }: WorkerIdentityRequest): WorkerIdentity {
  const id = params.worker_id;
  if (!id) return { ok: false, message: 'the task link has no worker_id parameter (mock provider links look like /task/<run>?worker_id=<id>)' };
  if (!isValidProviderWorkerId(id)) return { ok: false, message: 'worker_id must be 1-200 letters, digits or ._@:+- characters' };
  return { ok: true, providerWorkerId: id };
}

function hasReader(provider: CrowdProvider): provider is CrowdProvider & WorkerIdentityReader {
  return typeof (provider as Partial<WorkerIdentityReader>).identifyWorker === 'function';
}

export function identifyWorker(provider: CrowdProvider, request: WorkerIdentityRequest): WorkerIdentity {
  if (hasReader(provider)) return provider.identifyWorker(request);
  if (provider.type === 'mock') return mockIdentity(request);
  return { ok: false, message: `provider ${provider.type} does not say how to identify its workers from a task link; the gateway cannot register them` };
}
