/**
 * AssignmentWorkflow (`assignment-<assignmentId>`): the life of one assignment's agents.
 *
 * Started when the first worker is given one of its units: by the `startAssignmentWorkflows` activity
 * the TaskRun workflow schedules, or by the gateway that got the answer (docs/design.md §6), or as the run's child in runs
 * begun before that. It owns the
 * agents' timers (assignment duration, reconnect window), waits for partners when several agents
 * work together, records submissions, and gives a unit back to the pool when its agent leaves.
 * It tells the TaskRun workflow of each submission and release by signal.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  type SignalDefinition,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { type AgentLeftStatus, type AgentStatus, isActiveAgentStatus, type ProviderLeavingStatus } from '../model/status.ts';
import { aggregationActivities, assignmentActivities, assignmentStepsInTask, reviewActivities } from './activityProxies.ts';
import {
  type AgentJoined,
  type AssignmentStateView,
  AgentActionSchema,
  AgentConnectionSchema,
  AgentJoinedSchema,
  AgentReturnedSchema,
  AgentSubmitSchema,
  ExpireAssignmentSchema,
  agentActionSignal,
  agentDisconnectedSignal,
  agentJoinedSignal,
  agentReconnectedSignal,
  agentReturnedSignal,
  agentSubmitSignal,
  assignmentStateQuery,
  expireAssignmentSignal,
  taskRunWorkflowId,
  unitCompletedSignal,
  unitReleasedSignal,
  unitsAddedSignal,
} from './definitions.ts';
import { ASSIGNMENT_STEPS_IN_TASK } from './patches.ts';

export interface AssignmentInput {
  runId: string;
  assignmentId: string;
  unitsPerAssignment: number;
  assignmentDurationSeconds: number;
  reconnectWindowSeconds: number;
  /** Completed units still unreviewed this long after the assignment ends are approved; 0 = never. */
  autoApproveAfterSeconds?: number;
  firstAgent?: AgentJoined;
  /**
   * Overlap (docs/design.md §2): each agent works its unit alone, from the moment it joins (no
   * waiting); after each submission the item is aggregated, and dynamic overlap may add units.
   */
  independent?: boolean;
  /** Set only by continue-as-new. */
  continued?: AssignmentState;
}

interface AgentSlot extends AgentJoined {
  status: AgentStatus;
  connected: boolean;
  deadlineMs: number;
  reconnectDeadlineMs: number | null;
  /** The gateway connection that last resumed the agent: a late disconnect of an older one is stale. */
  connectionId?: string;
  /** Recent action ids: a packet replayed after a reconnect is applied once. */
  seenActions: string[];
}

interface AssignmentState {
  agents: AgentSlot[];
  completedUnits: string[];
  expiredReason: string | null;
  /** Independent units of the item so far (dynamic overlap adds some); absent = input.unitsPerAssignment. */
  units?: number;
}

type AgentEvent =
  | { kind: 'joined'; agentId: string }
  | { kind: 'action'; agentId: string; actionId: string; data: Record<string, unknown> }
  | { kind: 'submit'; agentId: string; submitKey: string; data: Record<string, unknown> }
  | { kind: 'returned'; agentId: string; status: ProviderLeavingStatus };

const SEEN_ACTIONS_KEPT = 200;
const HISTORY_LIMIT = 8_000;

export async function AssignmentWorkflow(input: AssignmentInput): Promise<{ completedUnits: string[]; expired: string | null }> {
  const state: AssignmentState = input.continued ?? { agents: [], completedUnits: [], expiredReason: null };
  // Decided once, before anything else happens: executions begun before the patch keep regular activities.
  const steps = patched(ASSIGNMENT_STEPS_IN_TASK) ? assignmentStepsInTask : assignmentActivities;
  const events: AgentEvent[] = [];
  const runHandle = getExternalWorkflowHandle(taskRunWorkflowId(input.runId));

  /** Tell the TaskRun workflow; if it has already ended (shut down meanwhile) there is no one to tell. */
  async function tellRun<T>(signal: SignalDefinition<[T]>, payload: T): Promise<void> {
    try {
      await runHandle.signal(signal, payload);
    } catch (err) {
      log.warn('task run workflow not reachable', { runId: input.runId, signal: signal.name, error: String(err) });
    }
  }

  const slot = (agentId: string): AgentSlot | undefined => state.agents.find((a) => a.agentId === agentId);
  const holding = (): AgentSlot[] => state.agents.filter((a) => isActiveAgentStatus(a.status));

  const join = (agent: AgentJoined): void => {
    if (slot(agent.agentId)) return;
    state.agents.push({
      ...agent,
      status: 'accepted',
      connected: true,
      deadlineMs: Date.now() + input.assignmentDurationSeconds * 1000,
      reconnectDeadlineMs: null,
      seenActions: [],
    });
    events.push({ kind: 'joined', agentId: agent.agentId });
  };
  if (input.firstAgent) join(input.firstAgent);

  setHandler(agentJoinedSignal, (agent) => {
    const parsed = AgentJoinedSchema.safeParse(agent);
    if (parsed.success) join(parsed.data);
  });
  setHandler(agentActionSignal, (action) => {
    const parsed = AgentActionSchema.safeParse(action);
    if (!parsed.success) return;
    const a = slot(parsed.data.agentId);
    if (!a || a.seenActions.includes(parsed.data.actionId)) return;
    a.seenActions = [...a.seenActions, parsed.data.actionId].slice(-SEEN_ACTIONS_KEPT);
    events.push({ kind: 'action', ...parsed.data });
  });
  setHandler(agentSubmitSignal, (submit) => {
    const parsed = AgentSubmitSchema.safeParse(submit);
    if (parsed.success) events.push({ kind: 'submit', ...parsed.data });
  });
  setHandler(agentReturnedSignal, (returned) => {
    const parsed = AgentReturnedSchema.safeParse(returned);
    if (parsed.success) events.push({ kind: 'returned', agentId: parsed.data.agentId, status: parsed.data.status ?? 'returned' });
  });
  setHandler(agentDisconnectedSignal, (connection) => {
    const parsed = AgentConnectionSchema.safeParse(connection);
    const a = parsed.success ? slot(parsed.data.agentId) : undefined;
    if (!a || !isActiveAgentStatus(a.status)) return;
    if (a.connectionId !== undefined && a.connectionId !== parsed.data!.connectionId) return;
    a.connected = false;
    a.reconnectDeadlineMs = Date.now() + input.reconnectWindowSeconds * 1000;
  });
  setHandler(agentReconnectedSignal, (connection) => {
    const parsed = AgentConnectionSchema.safeParse(connection);
    const a = parsed.success ? slot(parsed.data.agentId) : undefined;
    if (!a) return;
    a.connected = true;
    a.reconnectDeadlineMs = null;
    a.connectionId = parsed.data!.connectionId;
  });
  setHandler(expireAssignmentSignal, (request) => {
    const parsed = ExpireAssignmentSchema.safeParse(request);
    state.expiredReason ??= parsed.success ? parsed.data.reason : 'expired';
  });
  setHandler(assignmentStateQuery, (): AssignmentStateView => ({
    assignmentId: input.assignmentId,
    runId: input.runId,
    agents: state.agents.map((a) => ({
      agentId: a.agentId,
      unitId: a.unitId,
      workerId: a.workerId,
      status: a.status,
      connected: a.connected,
      deadline: new Date(a.deadlineMs).toISOString(),
      reconnectDeadline: a.reconnectDeadlineMs === null ? null : new Date(a.reconnectDeadlineMs).toISOString(),
    })),
    completedUnits: state.completedUnits,
    ended: isDone(),
  }));

  function isDone(): boolean {
    return state.expiredReason !== null || state.completedUnits.length >= (state.units ?? input.unitsPerAssignment);
  }

  /** An agent leaves without submitting: its unit goes back to the pool; partners mid-task lose their partner. */
  async function release(a: AgentSlot, status: Exclude<AgentLeftStatus, 'partner_disconnect'>): Promise<void> {
    const wasInTask = a.status === 'in_task';
    const leaving: Array<{ agent: AgentSlot; status: AgentLeftStatus }> = [{ agent: a, status }];
    if (wasInTask && input.unitsPerAssignment > 1 && !input.independent) {
      for (const partner of holding()) {
        if (partner !== a) leaving.push({ agent: partner, status: 'partner_disconnect' });
      }
    }
    for (const { agent, status: agentStatus } of leaving) {
      const released = await assignmentActivities.releaseUnit({ runId: input.runId, agentId: agent.agentId, unitId: agent.unitId, agentStatus });
      agent.status = agentStatus;
      await tellRun(unitReleasedSignal, {
        unitId: agent.unitId,
        agentId: agent.agentId,
        assignmentId: input.assignmentId,
        // Absent from results recorded before screening and gold units existed: back to the pool.
        unitStatus: released?.unitStatus ?? 'launched',
        reason: agentStatus,
      });
    }
  }

  async function handle(event: AgentEvent): Promise<void> {
    const a = slot(event.agentId);
    if (!a) return;
    switch (event.kind) {
      case 'joined': {
        if (input.independent) {
          // Alone on its unit: it starts at once.
          await setStatus([a], 'in_task');
          return;
        }
        // Several agents work together: each waits until all units of the assignment are taken.
        const ready = holding();
        if (ready.length < input.unitsPerAssignment) await setStatus([a], 'waiting');
        else await setStatus(ready.filter((x) => x.status !== 'in_task'), 'in_task');
        return;
      }
      case 'action': {
        if (!isActiveAgentStatus(a.status)) return;
        const partners = holding()
          .filter((x) => x !== a)
          .map((x) => x.agentId);
        await steps.recordAgentAction({ agentId: a.agentId, actionId: event.actionId, data: event.data, forwardTo: partners });
        return;
      }
      case 'submit': {
        if (a.status !== 'in_task') return;
        const { accepted } = await steps.recordSubmission({
          runId: input.runId,
          agentId: a.agentId,
          unitId: a.unitId,
          submitKey: event.submitKey,
          data: event.data,
        });
        if (!accepted) return;
        a.status = 'completed';
        state.completedUnits.push(a.unitId);
        if (input.independent) await aggregate();
        await tellRun(unitCompletedSignal, { unitId: a.unitId, agentId: a.agentId, assignmentId: input.assignmentId });
        return;
      }
      case 'returned': {
        if (isActiveAgentStatus(a.status)) await release(a, event.status);
        return;
      }
    }
  }

  /**
   * Moves agents to `status`, unless a shutdown of the run expired them first (the run expires what is
   * left as it ends, and its signal to this workflow may come after the agent joined): then they are
   * expired here too, and the expiry signal ends the assignment.
   */
  async function setStatus(agents: AgentSlot[], status: 'waiting' | 'in_task'): Promise<void> {
    try {
      await steps.setAgentsStatus({ agentIds: agents.map((x) => x.agentId), status });
      for (const x of agents) x.status = status;
    } catch (err) {
      // A regular activity's failure wraps the activity's own; a local activity's may come unwrapped.
      const cause = err instanceof ActivityFailure ? err.cause : err;
      if (!(cause instanceof ApplicationFailure && cause.type === 'IllegalTransitionError')) throw err;
      for (const x of agents) x.status = 'expired';
    }
  }

  /** Aggregate the item; units added by dynamic overlap are announced before the submission that led to them. */
  async function aggregate(): Promise<void> {
    const known = state.units ?? input.unitsPerAssignment;
    const { units } = await aggregationActivities.aggregateItem({ runId: input.runId, assignmentId: input.assignmentId });
    if (units <= known) return;
    state.units = units;
    await tellRun(unitsAddedSignal, { assignmentId: input.assignmentId, count: units - known });
  }

  /** The earliest moment an agent's time runs out, or Infinity. */
  function nextDeadline(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const a of holding()) {
      next = Math.min(next, a.deadlineMs, a.reconnectDeadlineMs ?? Number.POSITIVE_INFINITY);
    }
    return next;
  }

  while (!isDone()) {
    const event = events.shift();
    if (event) {
      await handle(event);
      continue;
    }
    const now = Date.now();
    const overdue = holding().find((a) => now >= a.deadlineMs || (a.reconnectDeadlineMs !== null && now >= a.reconnectDeadlineMs));
    if (overdue) {
      await release(overdue, now >= overdue.deadlineMs ? 'timeout' : 'disconnect');
      continue;
    }
    if (workflowInfo().historyLength > HISTORY_LIMIT || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      if (events.length === 0) {
        return continueAsNew<typeof AssignmentWorkflow>({ ...input, firstAgent: undefined, continued: state });
      }
      continue;
    }
    const deadline = nextDeadline();
    // A disconnect moves the next deadline (its reconnect window) without an event: wake for it too.
    const woken = (): boolean => events.length > 0 || state.expiredReason !== null || nextDeadline() !== deadline;
    if (deadline === Number.POSITIVE_INFINITY) await condition(woken);
    else await condition(woken, Math.max(1, deadline - now));
  }
  if (state.expiredReason !== null) log.info('assignment expired', { assignmentId: input.assignmentId, reason: state.expiredReason });
  // docs/design.md §4: a durable timer, so it fires even when no worker process was up at the moment it came due.
  const autoApproveAfterSeconds = input.autoApproveAfterSeconds ?? 0;
  if (autoApproveAfterSeconds > 0 && state.completedUnits.length > 0) {
    await sleep(autoApproveAfterSeconds * 1000);
    await reviewActivities.autoApproveUnits({ runId: input.runId, unitIds: state.completedUnits, afterSeconds: autoApproveAfterSeconds });
  }
  await condition(allHandlersFinished);
  return { completedUnits: state.completedUnits, expired: state.expiredReason };
}
