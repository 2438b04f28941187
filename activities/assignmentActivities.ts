/**
 * The side effects of an Assignment workflow: agents' status changes, live updates passed between
 * partners, submissions stored exactly once, and units given back to the pool when agents leave.
 * Every status change goes through the guarded transitions, so a retry changes nothing twice.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { Agent, Unit } from '../model/entities.ts';
import { transitionAgent, transitionUnit } from '../model/transitions.ts';
import type { AgentLeftStatus, ReleasedUnitStatus } from '../model/status.ts';
import { scoreQualifyingSubmission, tellProviderOfScore } from '../qualifications/qualifyingUnits.ts';
import type { ReofferUnitRequest } from '../providers/types.ts';
import { providers } from '../registry/builtins.ts';
import { type ActivityDeps, providerContext } from './context.ts';
import { enqueueForAgent, enqueueForAgents } from './outbox.ts';

export function createAssignmentActivities(deps: ActivityDeps) {
  const { db } = deps;

  /** `waiting` for partners, or `in_task`; each agent is told by an outbox message. */
  async function setAgentsStatus(input: { agentIds: string[]; status: 'waiting' | 'in_task' }): Promise<void> {
    const em = db.em();
    for (const agentId of input.agentIds) {
      await transitionAgent(em, agentId, input.status, input.status === 'in_task' ? { startedAt: new Date() } : {});
    }
    await enqueueForAgents(em, input.agentIds, 'status', { status: input.status }, `status:${input.status}`);
  }

  /**
   * Pass a live update to the agent's partners. The agent's own state was stored by the gateway
   * before it acknowledged the update (gateway/agentBinding.ts); written again here, late, it could
   * put back an older state than the last one acknowledged.
   */
  async function recordAgentAction(input: {
    agentId: string;
    actionId: string;
    data: Record<string, unknown>;
    forwardTo: string[];
  }): Promise<void> {
    const em = db.em();
    await em.nativeUpdate(Agent, { id: input.agentId }, { lastSeenAt: new Date() });
    for (const partner of input.forwardTo) {
      await enqueueForAgent(em, partner, 'live', { from: input.agentId, data: input.data }, `live:${input.agentId}:${input.actionId}`);
    }
  }

  /**
   * Store a submission once: the agent and its unit become `completed` in one transaction. A unit
   * expired meanwhile refuses it. A second submit with another key changes nothing.
   */
  async function recordSubmission(input: {
    runId: string;
    agentId: string;
    unitId: string;
    submitKey: string;
    data: Record<string, unknown>;
  }): Promise<{ accepted: boolean; reason?: string }> {
    /** Whether a screening or gold score may have to reach the provider: unknown on a retry. */
    let scored: boolean | undefined;
    const outcome = await db.em().transactional(async (em) => {
      const agent = await em.findOneOrFail(Agent, input.agentId);
      if (agent.status === 'completed') {
        return agent.submitKey === input.submitKey ? { accepted: true } : { accepted: false, reason: 'already submitted' };
      }
      // The gateway claims the key before it acknowledges a submit: another key was never acknowledged.
      if (agent.submitKey && agent.submitKey !== input.submitKey) return { accepted: false, reason: 'already submitted' };
      if (agent.status !== 'in_task') return { accepted: false, reason: `agent is ${agent.status}` };
      const unitMoved = await transitionUnit(em, input.unitId, 'completed', { completedAt: new Date() }).catch(() => false);
      if (!unitMoved) return { accepted: false, reason: 'unit is no longer assigned' };
      await transitionAgent(em, input.agentId, 'completed', {
        submission: input.data,
        submitKey: input.submitKey,
        submittedAt: new Date(),
      });
      // A screening or gold unit is scored in this same transaction: exactly once per submission.
      const score = await scoreQualifyingSubmission(em, {
        runId: input.runId,
        unitId: input.unitId,
        workerId: agent.worker.id,
        data: input.data,
      });
      scored = score !== null;
      return { accepted: true };
    });
    if (outcome.accepted && scored !== false) {
      const em = db.em();
      await tellProviderOfScore(em, providerContext(deps, em), { runId: input.runId, agentId: input.agentId });
    }
    await enqueueForAgent(
      db.em(),
      input.agentId,
      'status',
      outcome.accepted ? { status: 'completed' } : { status: 'submit_refused', reason: outcome.reason },
      outcome.accepted ? 'status:completed' : `submit_refused:${input.submitKey}`,
    );
    return outcome;
  }

  /**
   * The agent leaves without submitting: it ends with `agentStatus`, its unit is `launched` again,
   * except a screening or gold unit (made for this worker), which expires: its place is free again.
   */
  async function releaseUnit(input: {
    runId: string;
    agentId: string;
    unitId: string;
    agentStatus: AgentLeftStatus;
  }): Promise<{ unitStatus: ReleasedUnitStatus }> {
    const unitStatus = await db.em().transactional(async (em) => {
      await transitionAgent(em, input.agentId, input.agentStatus, { endedAt: new Date() }).catch((err: unknown) => {
        // Already ended otherwise (expired by a shutdown in between): nothing left to release.
        deps.log.info({ err: String(err), agentId: input.agentId }, 'agent already ended');
      });
      const unit = await em.findOne(Unit, input.unitId, { fields: ['kind'] });
      const to: ReleasedUnitStatus = unit && unit.kind !== 'normal' ? 'expired' : 'launched';
      const patch =
        to === 'expired' ? { endedAt: new Date(), expiredBy: `released:${input.agentStatus}` } : { worker: null, assignedAt: null };
      await transitionUnit(em, input.unitId, to, patch).catch((err: unknown) => {
        deps.log.info({ err: String(err), unitId: input.unitId }, 'unit not returned to the pool');
      });
      return to;
    });
    if (unitStatus === 'launched') await offerAgain(input);
    await enqueueForAgent(db.em(), input.agentId, 'status', { status: input.agentStatus }, `status:${input.agentStatus}`);
    return { unitStatus };
  }

  /**
   * A unit back in the pool must be reachable at the provider again (`CrowdProvider.reofferUnit`:
   * MTurk's leaving worker may still hold the HIT slot). Done on every attempt whose agent did leave
   * this way, so a retry after a crash offers it too; the provider does it once per agent.
   */
  async function offerAgain(input: { runId: string; agentId: string; unitId: string; agentStatus: ReofferUnitRequest['reason'] }): Promise<void> {
    const em = db.em();
    const agent = await em.findOne(Agent, input.agentId, { populate: ['worker'] });
    const unit = await em.findOne(Unit, input.unitId, { fields: ['providerUnitId', 'status'] });
    if (agent?.status !== input.agentStatus || !unit?.providerUnitId || unit.status === 'expired') return;
    const provider = providers.get(agent.worker.getEntity().provider);
    if (!provider.reofferUnit) return;
    try {
      const offered = await provider.reofferUnit(providerContext(deps, em), {
        runId: input.runId,
        unitId: input.unitId,
        providerUnitId: unit.providerUnitId,
        agentId: input.agentId,
        reason: input.agentStatus,
        requestKey: `reoffer:${input.agentId}`,
      });
      if (offered.providerUnitId !== unit.providerUnitId) {
        await em.nativeUpdate(Unit, { id: input.unitId }, { providerUnitId: offered.providerUnitId });
      }
    } catch (err) {
      // The provider refused for good: the unit is back in hitloop's pool all the same (and the
      // provider frees the slot on its own terms); a failed release would strand the assignment.
      if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
      deps.log.error({ err, unitId: input.unitId, agentId: input.agentId }, 'the provider refused to offer a released unit again');
    }
  }

  return { setAgentsStatus, recordAgentAction, recordSubmission, releaseUnit };
}

export type AssignmentActivities = ReturnType<typeof createAssignmentActivities>;
