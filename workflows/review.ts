/**
 * ReviewWorkflow (`review-<requestKey>`): one operator review operation (docs/design.md §4): approve, reject
 * or soft-reject a unit, or pay a bonus. One workflow per request key, so Temporal itself refuses
 * to run a request twice (the operator starts it with a reuse policy that only lets a refused
 * request be tried again), and the Web UI shows each review with its outcome. The activities do
 * the database and provider work, idempotent by the same request key.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ReviewActivities } from '../activities/reviewActivities.ts';
import type { ReviewDecision } from '../model/entities.ts';

export type ReviewOperation =
  | { kind: 'review'; decision: ReviewDecision; unitId: string; note?: string; requestKey: string }
  | {
      kind: 'bonus';
      unitId: string;
      amount: number;
      reason: string;
      requestKey: string;
      /** Pay even past what the run's `max_spend` leaves (otherwise refused, nothing paid). */
      overBudget?: boolean;
    };

export interface ReviewOutcome {
  kind: ReviewOperation['kind'];
  requestKey: string;
  runId: string;
  unitId: string;
  agentId: string;
  workerId: string;
  providerWorkerId: string;
  unitStatus: string;
  agentStatus: string;
  decision?: ReviewDecision;
  amount?: number;
  providerRef?: string;
  /** True when this request key had already done its work (a retry): nothing was done twice. */
  alreadyDone: boolean;
}

const acts = proxyActivities<ReviewActivities>({
  startToCloseTimeout: '60s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

export async function ReviewWorkflow(op: ReviewOperation): Promise<ReviewOutcome> {
  return op.kind === 'bonus' ? acts.payBonus(op) : acts.reviewUnit(op);
}
