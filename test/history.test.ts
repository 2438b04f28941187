/**
 * What an operator sees of a run in Temporal, on SQLite and on PostgreSQL:
 * - the Web UI tells the story: readable workflow ids, activity, signal and update names, a memo
 *   with the config summary, and search attributes that visibility queries find (a run's
 *   assignments too, by `HitloopRunId`);
 * - a run can be started with a plain Temporal client (no hitloop code on the caller's side), and a
 *   bad config started that way fails the workflow with a message naming the bad key.
 */
import { WorkflowFailedError } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../model/entities.ts';
import { assignmentWorkflowId, taskRunWorkflowId } from '../workflows/definitions.ts';
import { RUN_ID, RUN_STATUS, TASK_NAME } from '../workflows/searchAttributes.ts';
import { formConfig } from './support/configs.ts';
import { workUntilRunEnds } from './support/scriptedAgents.ts';
import { eventually, startStack, type Dialect, type Stack } from './support/stack.ts';

type HistoryEvent = NonNullable<History['events']>[number];

/** The names a reader of the history sees: activity types, signals, updates, child workflows. */
function storyOf(events: HistoryEvent[]) {
  const names = (pick: (e: HistoryEvent) => string | null | undefined): string[] => [
    ...new Set(events.map(pick).filter((n): n is string => !!n)),
  ];
  return {
    activities: names((e) => e.activityTaskScheduledEventAttributes?.activityType?.name),
    signalsReceived: names((e) => e.workflowExecutionSignaledEventAttributes?.signalName),
    signalsSent: names((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName),
    updates: names((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name),
    // A local activity is on record as a marker naming its type (the Temporal UI shows it as one).
    localActivities: names((e) => {
      const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
      return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string }).activity_type : undefined;
    }),
    children: names((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId),
    childTypes: names((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name),
  };
}

describe.each<Dialect>(['sqlite', 'postgresql'])('a run as Temporal shows it, on %s', (dialect) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(dialect);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('tells a readable story: workflow ids, activity, signal and update names, memo, search attributes', async () => {
    const { operator, env, db } = stack;
    const config = formConfig({ max_num_concurrent_units: 2 }, 3);
    const { runId, workflowId } = await operator.launch(config);
    expect(workflowId).toBe(`taskrun-${runId}`);
    await Promise.all(['story-a', 'story-b'].map((w) => workUntilRunEnds(env.client, runId, w)));
    expect((await operator.wait(runId, { pollMs: 200 })).status).toBe('completed');

    const handle = env.client.workflow.getHandle(workflowId);
    const run = storyOf((await handle.fetchHistory()).events ?? []);
    expect(run.activities).toEqual(
      expect.arrayContaining([
        'validateTaskRunConfig',
        'registerTaskRun',
        'createAssignments',
        'setUpProviderForRun',
        'launchUnits',
        'startAssignmentWorkflows',
        'recordRunStatus',
      ]),
    );
    expect(run.localActivities).toEqual(['assignUnitsToWorkers']);
    expect(run.updates).toContain('requestUnit');
    expect(run.signalsReceived).toContain('unitCompleted');
    // The assignments' workflows are started by the startAssignmentWorkflows activity (docs/design.md §6),
    // not as children: the run's history schedules it, and visibility lists them by the run's id.
    expect(run.children).toEqual([]);
    const assignments = await db.em().find(Agent, { taskRun: runId }, { fields: ['assignment'] });
    const expectedAssignments = [...new Set(assignments.map((a) => assignmentWorkflowId(a.assignment.id)))].sort();
    expect(expectedAssignments[0]).toBe(`assignment-${runId}-a0`);
    const listed = await eventually(async () => {
      const ids: string[] = [];
      for await (const wf of env.client.workflow.list({ query: `WorkflowType = 'AssignmentWorkflow' AND HitloopRunId = '${runId}'` })) ids.push(wf.workflowId);
      return ids.length === expectedAssignments.length ? ids.sort() : undefined;
    }, `visibility to list the ${expectedAssignments.length} assignment workflows of run ${runId}`);
    expect(listed).toEqual(expectedAssignments);

    const child = storyOf((await env.client.workflow.getHandle(expectedAssignments[0]!).fetchHistory()).events ?? []);
    // Its short database steps are local activities (patch assignment-steps-in-task): on record as markers.
    expect(child.localActivities).toEqual(expect.arrayContaining(['setAgentsStatus', 'recordSubmission']));
    expect(child.signalsReceived).toContain('agentSubmit');
    expect(child.signalsSent).toContain('unitCompleted');

    const description = await handle.describe();
    expect(description.type).toBe('TaskRunWorkflow');
    expect(description.memo).toMatchObject({
      config: { task: config.task_name, title: 'Label a sentence', provider: 'mock', blueprint: 'static-form', reward: 0.5, max_num_concurrent_units: 2 },
    });
    expect(description.typedSearchAttributes.get(TASK_NAME)).toBe(config.task_name);
    expect(description.typedSearchAttributes.get(RUN_ID)).toBe(runId);
    expect(description.typedSearchAttributes.get(RUN_STATUS)).toBe('completed');

    // Visibility is eventually consistent: the query finds the run once the index has caught up.
    const found = await eventually(async () => {
      const ids: string[] = [];
      for await (const wf of env.client.workflow.list({ query: `HitloopRunStatus = 'completed' AND HitloopRunId = '${runId}'` })) ids.push(wf.workflowId);
      return ids.length > 0 ? ids : undefined;
    }, `visibility to find run ${runId} by HitloopRunStatus = 'completed'`);
    expect(found).toEqual([workflowId]);
  });

  it('runs when started with a plain Temporal client, without hitloop code on the caller side', async () => {
    const { env, operator, settings } = stack;
    const runId = `plain-${dialect}-${Date.now().toString(36)}`;
    const handle = await env.client.workflow.start('TaskRunWorkflow', {
      args: [formConfig({ max_num_concurrent_units: 1 }, 2)],
      taskQueue: settings.taskQueue,
      workflowId: taskRunWorkflowId(runId),
    });
    await workUntilRunEnds(env.client, runId, 'plain-worker');
    const outcome = (await handle.result()) as { status: string; units: { completed: number } };
    expect(outcome).toMatchObject({ runId, status: 'completed', units: { completed: 2 } });
    expect((await operator.status(runId)).status).toBe('completed');
    // The workflow set its own search attributes: the caller gave none.
    expect((await handle.describe()).typedSearchAttributes.get(RUN_ID)).toBe(runId);
  });

  it('fails a run started by a plain client with an invalid config, naming the bad key', async () => {
    const { env, operator, settings } = stack;
    const runId = `plain-bad-${dialect}-${Date.now().toString(36)}`;
    const handle = await env.client.workflow.start('TaskRunWorkflow', {
      args: [formConfig({ max_num_concurrent_units: -1 }, 2)],
      taskQueue: settings.taskQueue,
      workflowId: taskRunWorkflowId(runId),
    });
    const failure = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const message = (failure as WorkflowFailedError).cause?.message ?? '';
    expect(message).toMatch(/invalid config/);
    expect(message).toMatch(/max_num_concurrent_units/);

    const status = await operator.status(runId);
    expect(status.status).toBe('failed');
    expect(status.failureReason).toMatch(/max_num_concurrent_units/);
    expect((await handle.describe()).typedSearchAttributes.get(RUN_STATUS)).toBe('failed');
  });
});
