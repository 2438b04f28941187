/**
 * Who a connecting worker is, read from the query parameters of their task link by the run's
 * provider (`CrowdProvider.identifyWorker`). A provider that cannot say is refused, so a production
 * provider never falls back to trusting an unsigned parameter.
 */
import type { CrowdProvider, WorkerIdentity, WorkerIdentityRequest } from '../providers/types.ts';

export type { WorkerIdentity, WorkerIdentityRequest } from '../providers/types.ts';
export { isValidProviderWorkerId } from '../providers/workerIds.ts';

export async function identifyWorker(provider: CrowdProvider, request: WorkerIdentityRequest): Promise<WorkerIdentity> {
  if (provider.identifyWorker) return await provider.identifyWorker(request);
  return { ok: false, message: `provider ${provider.type} does not say how to identify its workers from a task link; the gateway cannot register them` };
}
