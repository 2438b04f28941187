/**
 * TaskRunWorkflow's own decisions with stub activities: the real workflow code on the dev server
 * already used by the tests, a Worker whose activities are scripted here (no database, no
 * provider), so a rule of the workflow is checked in seconds. Full-stack runs: taskRun.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAssignmentWorkflows } from '../activities/assignmentStarts.ts';
import type { TaskRunActivities } from '../activities/taskRunActivities.ts';
import { WorkflowCalls, WorkflowGoneError } from '../gateway/workflowCalls.ts';
import { AssignmentWorkflow } from '../workflows/assignment.ts';
import {
  agentReturnedSignal,
  agentSubmitSignal,
  assignmentStateQuery,
  assignmentWorkflowId,
  requestUnitUpdate,
  runStatusQuery,
  shutdownRunSignal,
  taskRunWorkflowId,
  type UnitRequest,
  type UnitRequestResult,
} from '../workflows/definitions.ts';
import type { RunPlan } from '../workflows/runPlan.ts';
import { RUN_ID } from '../workflows/searchAttributes.ts';
import { TaskRunWorkflow } from '../workflows/taskRun.ts';
import { eventually } from './support/stack.ts';
import { type StubWorker, startStubWorker } from './support/temporal.ts';

const UNITS = 4;
const plan: RunPlan = {
  taskName: 'stubbed',
  providerType: 'mock',
  blueprintType: 'static-form',
  limits: { max_num_concurrent_units: 0, allowed_concurrent: 0, maximum_units_per_worker: 0, task_reward: 0.5, task_lifetime_seconds: 3600 },
  noSubmissionPatienceSeconds: 3600,
  assignmentDurationSeconds: 3600,
  reconnectWindowSeconds: 60,
  unitsPerAssignment: 1,
  autoApproveAfterSeconds: 3600,
  maxSpend: null,
  summary: {},
};

/** The registration activity's stand-in: one agent per worker, always reported as this run's (new). */
const decisions: Array<UnitRequest[]> = [];
function agentOf(request: UnitRequest): UnitRequestResult {
  // `joins-<assignment>-<n>`: workers sharing one assignment (its first starts the workflow, the others join it).
  const joining = /^joins-(.+)-(\d+)$/.exec(request.providerWorkerId);
  if (joining) {
    const id = `${joining[1]}-${joining[2]}`;
    return { outcome: 'assigned', agentId: `ag-${id}`, unitId: `u-${id}`, assignmentId: joining[1]!, workerId: `w-${id}`, newlyAssigned: true };
  }
  const n = Number(request.providerWorkerId.replace(/\D/g, ''));
  if (n >= UNITS) return { outcome: 'refused', reason: 'no_units_available', detail: 'none left' };
  return { outcome: 'assigned', agentId: `ag-${n}`, unitId: `u-${n}`, assignmentId: `stub-a${n}`, workerId: `w-${n}`, newlyAssigned: true };
}

const stubs: Partial<TaskRunActivities> & Record<string, (...args: never[]) => Promise<unknown>> = {
  validateTaskRunConfig: async () => plan,
  registerTaskRun: async () => undefined,
  createAssignments: async () => ({ assignments: UNITS, units: UNITS }),
  setUpProviderForRun: async () => undefined,
  launchUnits: async (input: { count: number }) => ({ launched: input.count }),
  expireUnits: async () => ({}),
  recordRunStatus: async () => undefined,
  closeRunAtProvider: async () => undefined,
  recordMaxSpend: async () => undefined,
  assignUnitsToWorkers: async (input: { requests: UnitRequest[] }) => {
    decisions.push(input.requests);
    return input.requests.map(agentOf);
  },
  // The hand-over to the assignment workflows is the real one (signal-with-start).
  startAssignmentWorkflows,
  runSpend: async () => 0,
  // The assignment workflows the run starts: they only set statuses here.
  setAgentsStatus: async () => undefined,
  releaseUnit: async () => ({ unitStatus: 'launched' }),
  recordAgentAction: async () => undefined,
  recordSubmission: async () => ({ accepted: true }),
};

describe('TaskRunWorkflow with stub activities', () => {
  let env: TestWorkflowEnvironment;
  let taskQueue: string;
  let stubWorker: StubWorker | undefined;
  beforeAll(async () => {
    stubWorker = await startStubWorker('taskrun-stubs', stubs);
    ({ env, taskQueue } = stubWorker);
  });
  afterAll(async () => {
    await stubWorker?.stop();
  });

  async function startRun() {
    const runId = `r-stub-${randomUUID().slice(0, 8)}`;
    const handle = await env.client.workflow.start(TaskRunWorkflow, { args: [{}], taskQueue, workflowId: taskRunWorkflowId(runId) });
    await eventually(async () => ((await handle.query(runStatusQuery)).units.launched === UNITS ? true : undefined), 'units launched', 60_000);
    return handle;
  }

  it('an agent the run made is handed to its assignment once, however often the decision reports it new', async () => {
    const handle = await startRun();
    const request: UnitRequest = { provider: 'mock', providerWorkerId: 'worker-1', registrationKey: 'k1' };
    // Two updates for one registration (a retried register under another id, as after onboarding).
    const calls = new WorkflowCalls(env.client);
    const runId = handle.workflowId.replace(/^taskrun-/, '');
    const first = await calls.requestUnit(runId, request);
    const second = await calls.requestUnit(runId, request, 'again');
    // The caller started the assignment's workflow; how to is not part of the answer it passes on.
    expect(first).not.toHaveProperty('assignmentStart');
    // The retry is answered as a resume (the gateway's `resumed: true`), with the same agent.
    expect(first).toMatchObject({ outcome: 'assigned', newlyAssigned: true });
    expect(second).toEqual({ ...first, newlyAssigned: false });
    const status = await handle.query(runStatusQuery);
    expect([status.units.assigned, status.units.launched, status.openAssignments]).toEqual([1, UNITS - 1, 1]);
    // Handed over after the answer (docs/design.md §6): the assignment's workflow knows its agent soon, and once.
    const assignment = env.client.workflow.getHandle(assignmentWorkflowId('stub-a1'));
    const agents = await eventually(async () => {
      const known = (await assignment.query(assignmentStateQuery).catch(() => undefined))?.agents.map((a) => a.agentId);
      return known?.length ? known : undefined;
    }, 'the assignment workflow to know its agent');
    expect(agents).toEqual(['ag-1']);
    await handle.signal(shutdownRunSignal, { reason: 'test over' });
    expect((await handle.result()).status).toBe('cancelled');
  });

  it('refusals change no count; once shut down, the run refuses with run_not_running and decides nothing more', async () => {
    const handle = await startRun();
    const results = await Promise.all(
      [0, 2, 3, 9].map((n) => handle.executeUpdate(requestUnitUpdate, { args: [{ provider: 'mock', providerWorkerId: `worker-${n}`, registrationKey: `k${n}` }] })),
    );
    expect(results.map((r) => r.outcome)).toEqual(['assigned', 'assigned', 'assigned', 'refused']);
    expect((await handle.query(runStatusQuery)).units).toMatchObject({ assigned: 3, launched: UNITS - 3 });
    await handle.signal(shutdownRunSignal, { reason: 'test over' });
    const decided = decisions.length;
    const late = await handle
      .executeUpdate(requestUnitUpdate, { args: [{ provider: 'mock', providerWorkerId: 'worker-1', registrationKey: 'late' }] })
      .catch((err: unknown) => ({ outcome: 'refused', reason: 'run_not_running', detail: String(err) }) as const);
    expect(late).toMatchObject({ outcome: 'refused', reason: 'run_not_running' });
    expect((await handle.result()).status).toBe('cancelled');
    expect(decisions.length).toBe(decided);
  });

  it('decides and answers a registration in the workflow task that accepted it; a worker who submits at once is heard', async () => {
    const handle = await startRun();
    // A fresh assignment id: its workflow has never run (stub-a<n> ids are shared by the tests of this file).
    const fresh = `stub-fresh-${randomUUID().slice(0, 8)}`;
    const result = await handle.executeUpdate(requestUnitUpdate, {
      args: [{ provider: 'mock', providerWorkerId: `joins-${fresh}-1`, registrationKey: 'k-fresh' }],
      updateId: 'register-fast',
    });
    if (result.outcome !== 'assigned') throw new Error(`no unit: ${JSON.stringify(result)}`);
    // The first agent of its assignment: the answer says how to start the assignment's workflow with it.
    expect(result.assignmentStart?.input).toMatchObject({ assignmentId: result.assignmentId, firstAgent: { agentId: result.agentId } });
    // At once, like a page that submits the moment it has its agent: the assignment workflow may not exist yet
    // (here no caller started it: the run's own hand-over does).
    await new WorkflowCalls(env.client).signalAssignment(result.assignmentId, agentSubmitSignal, { agentId: result.agentId, submitKey: 's-fast', data: {} });
    await eventually(async () => ((await handle.query(runStatusQuery)).units.completed === 1 ? true : undefined), 'the submission counted', 60_000);
    const assignment = env.client.workflow.getHandle(assignmentWorkflowId(result.assignmentId));
    expect((await assignment.query(assignmentStateQuery)).completedUnits).toEqual([result.unitId]);
    // Not a child of the run: the Temporal UI finds it by the run's id.
    expect((await assignment.describe()).typedSearchAttributes.get(RUN_ID)).toBe(handle.workflowId.replace(/^taskrun-/, ''));

    // The history: accepted, decided (the local activity's marker) and answered in one workflow task,
    // which also schedules the hand-over; no child start, no registration activity task.
    const events = (await handle.fetchHistory()).events ?? [];
    const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.protocolInstanceId === 'register-fast');
    const answered = events.findIndex((e) => Number(e.workflowExecutionUpdateCompletedEventAttributes?.acceptedEventId) === Number(events[accepted]?.eventId));
    const decided = events.findLastIndex((e, i) => i < answered && e.markerRecordedEventAttributes);
    const handedOver = events.findIndex((e, i) => i > accepted && e.activityTaskScheduledEventAttributes?.activityType?.name === 'startAssignmentWorkflows');
    const taskBefore = (i: number): number => events.slice(0, i).findLastIndex((e) => e.workflowTaskCompletedEventAttributes);
    expect([accepted, decided, answered, handedOver].every((i) => i > 0)).toBe(true);
    expect(new Set([accepted, decided, answered, handedOver].map(taskBefore)).size).toBe(1);
    expect(events.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toEqual([]);
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'assignUnitsToWorkers')).toEqual([]);
    await handle.signal(shutdownRunSignal, { reason: 'test over' });
    expect((await handle.result()).status).toBe('cancelled');
  });

  it('a worker joining an open assignment is answered once the assignment workflow knows it: a return sent at once is heard', async () => {
    const handle = await startRun();
    const shared = `stub-shared-${randomUUID().slice(0, 8)}`;
    const register = (n: number) =>
      handle.executeUpdate(requestUnitUpdate, { args: [{ provider: 'mock', providerWorkerId: `joins-${shared}-${n}`, registrationKey: `j${n}` }] });
    expect(await register(1)).toMatchObject({ outcome: 'assigned', assignmentId: shared });
    const joined = await register(2);
    if (joined.outcome !== 'assigned') throw new Error(`no unit: ${JSON.stringify(joined)}`);
    // Straight to the assignment workflow, as the gateway would send a page's return.
    await new WorkflowCalls(env.client).signalAssignment(shared, agentReturnedSignal, { agentId: joined.agentId });
    const assignment = env.client.workflow.getHandle(assignmentWorkflowId(shared));
    const statusOf = async () => (await assignment.query(assignmentStateQuery)).agents.find((a) => a.agentId === joined.agentId)?.status;
    await eventually(async () => ((await statusOf()) === 'returned' ? true : undefined), 'the return heard', 60_000);
    await handle.signal(shutdownRunSignal, { reason: 'test over' });
    expect((await handle.result()).status).toBe('cancelled');
  });

  it('the gateway waits for an assignment workflow not started yet, and gives up at once on one that has closed', async () => {
    const assignmentId = `stub-late-${randomUUID().slice(0, 8)}`;
    const agent = { agentId: 'ag-late', unitId: 'u-late', workerId: 'w-late' };
    const retries: string[] = [];
    const calls = new WorkflowCalls(env.client, { onRetry: (_what, _attempt, error) => retries.push(error) });
    const returned = calls.signalAssignment(assignmentId, agentReturnedSignal, { agentId: agent.agentId });
    await eventually(async () => (retries.length > 0 ? true : undefined), 'the signal refused: no such workflow yet');
    const late = await env.client.workflow.start(AssignmentWorkflow, {
      taskQueue,
      workflowId: assignmentWorkflowId(assignmentId),
      args: [
        { runId: 'r-none', assignmentId, unitsPerAssignment: 1, assignmentDurationSeconds: 3600, reconnectWindowSeconds: 60, autoApproveAfterSeconds: 3600, firstAgent: agent },
      ],
    });
    await returned;
    await eventually(async () => ((await late.query(assignmentStateQuery)).agents[0]?.status === 'returned' ? true : undefined), 'the return heard');
    await late.terminate('test over');
    retries.length = 0;
    await expect(calls.signalAssignment(assignmentId, agentReturnedSignal, { agentId: agent.agentId })).rejects.toBeInstanceOf(WorkflowGoneError);
    expect(retries).toEqual([]);
  });
});
