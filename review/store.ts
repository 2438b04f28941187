/**
 * Review and bonus, done once per request key (docs/design.md §4). Each first records the request in the
 * database (a Review or a Bonus row, unique by request key) together with the status changes, then
 * calls the provider with the same key. A retry after a crash finds the row and repeats only the
 * provider call, which the provider answers from its record of the key: no unit is reviewed twice
 * and no bonus is paid twice.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '../model/database.ts';
import type { Worker } from '../model/entities.ts';
import { Agent, Bonus, Review, Unit, type ReviewDecision } from '../model/entities.ts';
import { type AgentStatus, SUBMITTED_AGENT_STATUSES, SUBMITTED_UNIT_STATUSES, type UnitStatus } from '../model/status.ts';
import { transitionAgent, transitionUnit } from '../model/transitions.ts';
import type { ProviderContext } from '../providers/types.ts';
import { providers } from '../registry/builtins.ts';
import type { ReviewOperation, ReviewOutcome } from '../workflows/review.ts';
import { fitsBudget, lockRunBudget, paymentCost, runBudget } from './budget.ts';

/** A request that cannot succeed as asked: retrying will not help; nothing was changed. */
export class ReviewRefusedError extends Error {
  override name = 'ReviewRefusedError';
}

export const UNIT_STATUS_OF: Readonly<Record<ReviewDecision, UnitStatus>> = {
  approve: 'accepted',
  reject: 'rejected',
  soft_reject: 'soft_rejected',
};
export const AGENT_STATUS_OF: Readonly<Record<ReviewDecision, AgentStatus>> = {
  approve: 'approved',
  reject: 'rejected',
  soft_reject: 'soft_rejected',
};

interface Target {
  unit: Unit;
  agent: Agent;
  worker: Worker;
}

/** The unit and the agent whose submission it holds; refused when the unit has no submission. */
async function submittedTarget(em: EntityManager, unitId: string, what: string): Promise<Target> {
  const unit = await em.findOne(Unit, unitId);
  if (!unit) throw new ReviewRefusedError(`there is no unit "${unitId}"; \`hitloop review <runId>\` lists the units awaiting review`);
  if (!SUBMITTED_UNIT_STATUSES.includes(unit.status)) {
    throw new ReviewRefusedError(
      `unit ${unitId} is ${unit.status}, not completed: only submitted work can get a ${what}; nothing was changed`,
    );
  }
  const agent = await em.findOne(Agent, { unit: unitId, status: { $in: [...SUBMITTED_AGENT_STATUSES] } }, { populate: ['worker'] });
  if (!agent) throw new ReviewRefusedError(`unit ${unitId} has no submitting agent on record; nothing was changed`);
  return { unit, agent, worker: agent.worker.getEntity() };
}

function outcome(op: ReviewOperation, t: Target, extra: Partial<ReviewOutcome> & { alreadyDone: boolean }): ReviewOutcome {
  return {
    kind: op.kind,
    requestKey: op.requestKey,
    runId: t.unit.taskRun.id,
    unitId: t.unit.id,
    agentId: t.agent.id,
    workerId: t.worker.id,
    providerWorkerId: t.worker.providerWorkerId,
    unitStatus: t.unit.status,
    agentStatus: t.agent.status,
    ...extra,
  };
}

type ReviewOp = Extract<ReviewOperation, { kind: 'review' }>;

/**
 * The unit a review names, if this request may review it: refused when the key was used for another
 * operation or the unit was reviewed already. `alreadyDone`: this very request was recorded before.
 */
async function reviewableTarget(em: EntityManager, op: ReviewOp): Promise<{ target: Target; alreadyDone: boolean }> {
  const previous = await em.findOne(Review, { requestKey: op.requestKey });
  if (previous) {
    if (previous.unit.id !== op.unitId || previous.decision !== op.decision) {
      throw new ReviewRefusedError(
        `request key "${op.requestKey}" was already used to ${previous.decision.replace('_', '-')} unit ${previous.unit.id}; use another key for another operation`,
      );
    }
    return { target: await submittedTarget(em, op.unitId, 'review'), alreadyDone: true };
  }
  const target = await submittedTarget(em, op.unitId, 'review');
  if (target.unit.status !== 'completed') {
    const by = await em.findOne(Review, { unit: op.unitId }, { orderBy: { createdAt: 'desc' } });
    throw new ReviewRefusedError(
      `unit ${op.unitId} was already reviewed (${target.unit.status}${by ? `, request ${by.requestKey}` : ''}); a unit is reviewed once, nothing was changed`,
    );
  }
  return { target, alreadyDone: false };
}

async function askProvider(ctx: ProviderContext, op: ReviewOp, target: Target): Promise<void> {
  const provider = providers.get(target.worker.provider);
  const request = {
    workerId: target.worker.providerWorkerId,
    unitId: op.unitId,
    requestKey: op.requestKey,
    ...(op.note ? { note: op.note } : {}),
  };
  if (op.decision === 'reject') await provider.rejectWork(ctx, request);
  else await provider.approveWork(ctx, request);
}

/**
 * Approve, reject or soft-reject a completed unit: the unit becomes accepted / rejected /
 * soft_rejected and its agent approved / rejected / soft_rejected. Soft-rejected work is paid
 * (approved at the provider) but recorded as poor.
 *
 * Approvals are recorded first and then paid (a retry repeats only the provider's call). A reject is
 * asked of the provider first and recorded after: a provider may refuse it for good (MTurk cannot
 * reject an assignment it approved, by auto-approval for one), and then the unit stays as it was.
 * A reject the provider made before a crash is made again as a no-op by the retry, then recorded.
 */
export async function reviewUnit(em: EntityManager, ctx: ProviderContext, op: ReviewOp): Promise<ReviewOutcome> {
  if (op.decision === 'reject') {
    // A fork of its own: the transaction below reads the unit afresh, not as this check saw it.
    const { target, alreadyDone } = await reviewableTarget(em.fork(), op);
    if (!alreadyDone) await askProvider(ctx, op, target);
  }
  const recorded = await em.transactional(async (tem) => {
    const { target, alreadyDone } = await reviewableTarget(tem, op);
    if (alreadyDone) return { target, alreadyDone };
    await tem.insert(Review, {
      id: `rv-${randomUUID()}`,
      unit: op.unitId,
      agent: target.agent.id,
      decision: op.decision,
      note: op.note ?? null,
      requestKey: op.requestKey,
      createdAt: new Date(),
    });
    await transitionUnit(tem, op.unitId, UNIT_STATUS_OF[op.decision], { endedAt: new Date() });
    await transitionAgent(tem, target.agent.id, AGENT_STATUS_OF[op.decision], { endedAt: new Date() });
    return { target: await submittedTarget(tem, op.unitId, 'review'), alreadyDone: false };
  });
  const { target } = recorded;
  // A retry of a recorded reject calls again too: the provider answers a repeated request as the first.
  if (op.decision !== 'reject' || recorded.alreadyDone) await askProvider(ctx, op, target);
  return outcome(op, target, { decision: op.decision, alreadyDone: recorded.alreadyDone });
}

/** Pay a bonus on a unit's submitted work, once per request key. */
export async function payBonus(
  em: EntityManager,
  ctx: ProviderContext,
  op: Extract<ReviewOperation, { kind: 'bonus' }>,
): Promise<ReviewOutcome> {
  const recorded = await em.transactional(async (tem) => {
    const previous = await tem.findOne(Bonus, { requestKey: op.requestKey });
    if (previous) {
      if (previous.unit.id !== op.unitId || Number(previous.amount) !== op.amount || previous.reason !== op.reason) {
        throw new ReviewRefusedError(
          `request key "${op.requestKey}" was already used for a bonus of ${Number(previous.amount)} on unit ${previous.unit.id}; use another key for another bonus`,
        );
      }
      return { target: await submittedTarget(tem, op.unitId, 'bonus'), bonus: previous };
    }
    const target = await submittedTarget(tem, op.unitId, 'bonus');
    const runId = target.unit.taskRun.id;
    if (!op.overBudget) await lockRunBudget(tem, runId);
    const budget = op.overBudget ? null : await runBudget(tem, runId);
    const cost = budget ? paymentCost(budget, op.amount) : op.amount;
    if (!fitsBudget(budget, op.amount)) {
      throw new ReviewRefusedError(
        `a bonus of ${op.amount}${cost !== op.amount ? ` (${cost} with the provider's fee)` : ''} is more than run ${runId}'s max_spend leaves ` +
          `(${budget!.left} of ${budget!.maxSpend}); nothing was paid. ` +
          `Pay it anyway with --over-budget, or raise the budget with \`hitloop set ${runId} max_spend=<amount>\``,
      );
    }
    await tem.insert(Bonus, {
      id: `bn-${randomUUID()}`,
      agent: target.agent.id,
      unit: op.unitId,
      worker: target.worker.id,
      taskRun: target.unit.taskRun.id,
      amount: op.amount,
      reason: op.reason,
      requestKey: op.requestKey,
      status: 'pending',
      createdAt: new Date(),
    });
    return { target, bonus: null };
  });
  const { target } = recorded;
  const alreadyPaid = recorded.bonus?.status === 'paid';
  let providerRef = recorded.bonus?.providerRef ?? undefined;
  if (!alreadyPaid) {
    // Pending: either new, or a crash came between the provider's payment and this record of it.
    const paid = await providers.get(target.worker.provider).payBonus(ctx, {
      workerId: target.worker.providerWorkerId,
      unitId: op.unitId,
      amount: op.amount,
      reason: op.reason,
      requestKey: op.requestKey,
    });
    providerRef = paid.providerRef;
    await em.nativeUpdate(Bonus, { requestKey: op.requestKey, status: 'pending' }, { status: 'paid', providerRef, paidAt: new Date() });
  }
  return outcome(op, target, { amount: op.amount, ...(providerRef ? { providerRef } : {}), alreadyDone: alreadyPaid });
}
