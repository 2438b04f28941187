/**
 * Operations of a provider with no crowd service behind it (`mock`, `local`): each request is
 * recorded in the `provider_call` table once per request key and answered from that record, the
 * way a real service answers a repeated idempotency token (MTurk's UniqueRequestToken).
 */
import { ProviderCall } from '../model/entities.ts';
import type { CrowdProvider, ProviderContext } from './types.ts';

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

type InHouseOperations = Omit<CrowdProvider, 'type' | 'optionsSchema' | 'setUpRun' | 'identifyWorker'>;

/** Every unit, review, bonus, qualification and block operation, recorded under `provider`. */
export function inHouseOperations(provider: string): InHouseOperations {
  const record = (ctx: ProviderContext, operation: string, requestKey: string, target: string, payload: Record<string, unknown>) =>
    recordOnce(ctx, provider, operation, requestKey, target, payload);
  return {
    async launchUnit(ctx, req) {
      const recorded = await record(ctx, 'launchUnit', req.requestKey, req.unitId, {
        runId: req.runId,
        reward: req.reward,
        taskUrl: req.taskUrl,
        providerUnitId: `${provider}-${req.unitId}`,
      });
      return { providerUnitId: String(recorded.providerUnitId) };
    },
    async expireUnit(ctx, req) {
      await record(ctx, 'expireUnit', req.requestKey, req.unitId, { providerUnitId: req.providerUnitId });
    },
    async approveWork(ctx, req) {
      await record(ctx, 'approveWork', req.requestKey, req.unitId, { workerId: req.workerId, note: req.note ?? null });
    },
    async rejectWork(ctx, req) {
      await record(ctx, 'rejectWork', req.requestKey, req.unitId, { workerId: req.workerId, note: req.note ?? null });
    },
    async payBonus(ctx, req) {
      const recorded = await record(ctx, 'payBonus', req.requestKey, req.workerId, {
        unitId: req.unitId,
        amount: req.amount,
        reason: req.reason,
        providerRef: `${provider}-bonus-${req.requestKey}`,
      });
      return { providerRef: String(recorded.providerRef) };
    },
    async grantQualification(ctx, req) {
      await record(ctx, 'grantQualification', req.requestKey, req.workerId, { qualification: req.qualification, value: req.value ?? null });
    },
    async revokeQualification(ctx, req) {
      await record(ctx, 'revokeQualification', req.requestKey, req.workerId, { qualification: req.qualification });
    },
    async blockWorker(ctx, req) {
      await record(ctx, 'blockWorker', req.requestKey, req.workerId, { reason: req.reason ?? null });
    },
    async unblockWorker(ctx, req) {
      await record(ctx, 'unblockWorker', req.requestKey, req.workerId, {});
    },
  };
}
