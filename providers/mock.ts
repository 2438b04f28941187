/**
 * The `mock` provider: no external calls. It records every request in the `provider_call` table and,
 * like a real crowd service given an idempotency token (MTurk's UniqueRequestToken), answers a
 * repeated request key with the first answer instead of acting twice. Tests read the record to
 * prove no unit was launched twice and no bonus paid twice.
 */
import { z } from 'zod';
import { ProviderCall } from '../model/entities.ts';
import type { CrowdProvider, ProviderContext } from './types.ts';

export const MOCK_PROVIDER = 'mock';

/** Record `operation` for `requestKey` once; return the recorded payload of the first request. */
export async function recordOnce(
  ctx: ProviderContext,
  provider: string,
  operation: string,
  requestKey: string,
  target: string,
  payload: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const previous = await ctx.em.findOne(ProviderCall, { provider, operation, requestKey });
  if (previous) return previous.payload as Record<string, unknown>;
  await ctx.em.insert(ProviderCall, { provider, operation, requestKey, target, payload, createdAt: new Date() });
  return payload;
}

export const mockProvider: CrowdProvider = {
  type: MOCK_PROVIDER,
  optionsSchema: z.strictObject({}),
  async setUpRun(ctx, { runId }) {
    await recordOnce(ctx, MOCK_PROVIDER, 'setUpRun', `setup:${runId}`, runId, {});
  },
  async launchUnit(ctx, req) {
    const recorded = await recordOnce(ctx, MOCK_PROVIDER, 'launchUnit', req.requestKey, req.unitId, {
      runId: req.runId,
      reward: req.reward,
      taskUrl: req.taskUrl,
      providerUnitId: `mock-${req.unitId}`,
    });
    return { providerUnitId: String(recorded.providerUnitId) };
  },
  async expireUnit(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'expireUnit', req.requestKey, req.unitId, { providerUnitId: req.providerUnitId });
  },
  async approveWork(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'approveWork', req.requestKey, req.unitId, { workerId: req.workerId, note: req.note ?? null });
  },
  async rejectWork(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'rejectWork', req.requestKey, req.unitId, { workerId: req.workerId, note: req.note ?? null });
  },
  async payBonus(ctx, req) {
    const recorded = await recordOnce(ctx, MOCK_PROVIDER, 'payBonus', req.requestKey, req.workerId, {
      unitId: req.unitId,
      amount: req.amount,
      reason: req.reason,
      providerRef: `mock-bonus-${req.requestKey}`,
    });
    return { providerRef: String(recorded.providerRef) };
  },
  async grantQualification(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'grantQualification', req.requestKey, req.workerId, {
      qualification: req.qualification,
      value: req.value ?? null,
    });
  },
  async revokeQualification(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'revokeQualification', req.requestKey, req.workerId, { qualification: req.qualification });
  },
  async blockWorker(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'blockWorker', req.requestKey, req.workerId, { reason: req.reason ?? null });
  },
  async unblockWorker(ctx, req) {
    await recordOnce(ctx, MOCK_PROVIDER, 'unblockWorker', req.requestKey, req.workerId, {});
  },
};
