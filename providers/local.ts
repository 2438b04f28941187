/**
 * The `local` provider: in-house annotators. There is no crowd service; the operator hands each
 * annotator a signed link (`hitloop links <run>`), one per worker, and the gateway checks the
 * signature (HMAC with the settings' secret) before registering them, so nobody can work under
 * another annotator's name. Payment and reviews happen in-house: every operation is recorded in
 * the `provider_call` table once per request key, like the mock provider does.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { inHouseOperations, recordOnce } from './inHouse.ts';
import type { CrowdProvider } from './types.ts';
import { isValidProviderWorkerId } from './workerIds.ts';

export const LOCAL_PROVIDER = 'local';

const workerIdSchema = z.string().refine(isValidProviderWorkerId, 'must be 1-200 letters, digits or ._@:+- characters');

export const localProviderOptionsSchema = z.strictObject({
  /** The annotators of the run: `hitloop links <run>` prints one link for each when no --worker is given. */
  workers: z.array(workerIdSchema).default([]),
});

/** The signature of one annotator's link for one run: 128 bits of HMAC-SHA256, base64url. */
export function localLinkSignature(secret: string, runId: string, workerId: string): string {
  return createHmac('sha256', secret).update(`hitloop-local-link:v1:${runId}:${workerId}`).digest().subarray(0, 16).toString('base64url');
}

/** The query parameters of an annotator's link. */
export function localWorkerParams(secret: string, runId: string, workerId: string): Record<string, string> {
  return { worker: workerId, sig: localLinkSignature(secret, runId, workerId) };
}

/** The link an annotator opens to work on a run. */
export function localWorkerLink(gatewayUrl: string, secret: string, runId: string, workerId: string): string {
  if (!isValidProviderWorkerId(workerId)) {
    throw new Error(`worker id ${JSON.stringify(workerId)} must be 1-200 letters, digits or ._@:+- characters`);
  }
  const query = new URLSearchParams(localWorkerParams(secret, runId, workerId)).toString();
  return `${gatewayUrl.replace(/\/+$/, '')}/task/${encodeURIComponent(runId)}?${query}`;
}

export const localProvider: CrowdProvider = {
  type: LOCAL_PROVIDER,
  optionsSchema: localProviderOptionsSchema,

  identifyWorker({ runId, params, secret }) {
    const worker = params.worker;
    const sig = params.sig;
    if (!worker || !sig) return { ok: false, message: 'this link is incomplete (it needs worker and sig); ask the operator for your link' };
    if (!isValidProviderWorkerId(worker)) return { ok: false, message: 'the worker in this link is not a valid worker id' };
    const expected = Buffer.from(localLinkSignature(secret, runId, worker), 'base64url');
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, message: 'this link is not valid for this task run (wrong or altered signature); ask the operator for your link' };
    }
    return { ok: true, providerWorkerId: worker };
  },

  async setUpRun(ctx, { runId, options }) {
    const { workers } = localProviderOptionsSchema.parse(options ?? {});
    await recordOnce(ctx, LOCAL_PROVIDER, 'setUpRun', `setup:${runId}`, runId, { workers });
    ctx.log.info({ runId, annotators: workers.length }, 'local run set up: print the annotators\' links with `hitloop links`');
  },
  ...inHouseOperations(LOCAL_PROVIDER),
};
