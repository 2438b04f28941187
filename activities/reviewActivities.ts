/**
 * The side effects of review and payment (docs/design.md §4): reviewing a unit, paying a bonus (both for the
 * ReviewWorkflow), approving what is still unreviewed when an assignment's auto-approve timer fires,
 * and reading a run's spend for the TaskRun workflow's budget guard. Idempotent by request key.
 */
import type { ReviewOperation, ReviewOutcome } from '../workflows/review.ts';
import { Unit } from '../model/entities.ts';
import { ReviewRefusedError, payBonus as payBonusOnce, reviewUnit as reviewUnitOnce } from '../review/store.ts';
import { runSpend as spendOf } from '../review/spend.ts';
import { type ActivityDeps, permanentFailure, providerContext } from './context.ts';

/** A refusal (bad request, unit not completed) fails the workflow at once: retrying cannot help. */
async function refusalsArePermanent<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ReviewRefusedError) throw permanentFailure('ReviewRefused', err.message);
    throw err;
  }
}

export function createReviewActivities(deps: ActivityDeps) {
  const { db } = deps;

  async function reviewUnit(op: Extract<ReviewOperation, { kind: 'review' }>): Promise<ReviewOutcome> {
    const em = db.em();
    const result = await refusalsArePermanent(() => reviewUnitOnce(em, providerContext(deps, em), op));
    deps.log.info(
      { unitId: op.unitId, decision: op.decision, requestKey: op.requestKey, alreadyDone: result.alreadyDone },
      'unit reviewed',
    );
    return result;
  }

  async function payBonus(op: Extract<ReviewOperation, { kind: 'bonus' }>): Promise<ReviewOutcome> {
    const em = db.em();
    const result = await refusalsArePermanent(() => payBonusOnce(em, providerContext(deps, em), op));
    deps.log.info({ unitId: op.unitId, amount: op.amount, requestKey: op.requestKey, alreadyDone: result.alreadyDone }, 'bonus paid');
    return result;
  }

  /**
   * Approve those of `unitIds` still waiting for review (`completed`); reviewed ones are left as
   * the operator decided. Request key `auto-approve-<unitId>`, so a retry approves nothing twice.
   */
  async function autoApproveUnits(input: { runId: string; unitIds: string[]; afterSeconds: number }): Promise<{ approved: string[] }> {
    const em = db.em();
    const waiting = await em.find(Unit, { id: { $in: input.unitIds }, status: 'completed' }, { fields: ['id'] });
    const approved: string[] = [];
    for (const { id: unitId } of waiting) {
      try {
        await reviewUnitOnce(em, providerContext(deps, em), {
          kind: 'review',
          decision: 'approve',
          unitId,
          note: `approved automatically ${input.afterSeconds} s after completion`,
          requestKey: `auto-approve-${unitId}`,
        });
        approved.push(unitId);
      } catch (err) {
        // The operator reviewed it between the query and now: their decision stands.
        if (!(err instanceof ReviewRefusedError)) throw err;
        deps.log.info({ unitId, reason: err.message }, 'not auto-approved');
      }
    }
    if (approved.length > 0) deps.log.info({ runId: input.runId, approved: approved.length }, 'units auto-approved');
    return { approved };
  }

  /** The run's spend: payable units' pay plus paid bonuses. */
  async function runSpend(input: { runId: string }): Promise<number> {
    return spendOf(db.em(), input.runId);
  }

  return { reviewUnit, payBonus, autoApproveUnits, runSpend };
}

export type ReviewActivities = ReturnType<typeof createReviewActivities>;
