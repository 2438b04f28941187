/**
 * The `mock` provider, for tests and demos: no external calls. Every request is recorded in the
 * `provider_call` table once per request key (see inHouse.ts), so tests can read the record to prove
 * no unit was launched twice and no bonus paid twice. Its task links name the worker in plain text
 * (`?worker_id=<id>`): nothing to trust, which is fine for a mock and never for a real provider.
 */
import { z } from 'zod';
import { inHouseOperations, recordOnce } from './inHouse.ts';
import type { CrowdProvider } from './types.ts';
import { isValidProviderWorkerId } from './workerIds.ts';

export const MOCK_PROVIDER = 'mock';

export const mockProvider: CrowdProvider = {
  type: MOCK_PROVIDER,
  // Pretend dollars: the cost preview reads like a real provider's.
  currency: 'USD',
  optionsSchema: z.strictObject({}),
  identifyWorker({ params }) {
    const id = params.worker_id;
    if (!id) return { ok: false, message: 'the task link has no worker_id parameter (mock provider links look like /task/<run>?worker_id=<id>)' };
    if (!isValidProviderWorkerId(id)) return { ok: false, message: 'worker_id must be 1-200 letters, digits or ._@:+- characters' };
    return { ok: true, providerWorkerId: id };
  },
  async setUpRun(ctx, { runId }) {
    await recordOnce(ctx, MOCK_PROVIDER, 'setUpRun', `setup:${runId}`, runId, {});
  },
  ...inHouseOperations(MOCK_PROVIDER),
};
