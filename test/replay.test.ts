/**
 * Replays the recorded histories in test/fixtures/histories against the current workflow code: a
 * change that would break runs already in flight (nondeterminism) fails here, before it ships.
 *
 * With HITLOOP_RECORD_HISTORIES=1 it first runs the scenarios again (caps, patience, lifetime,
 * continue-as-new, shutdown) and records their histories; test/crash.test.ts records the crash
 * scenarios the same way. Re-record after a deliberate, versioned change of the workflows only.
 */
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowSinks } from '../observability/telemetry.ts';
import { ensureWorkflowBundle } from '../workers/workflowBundle.ts';
import { formConfig } from './support/configs.ts';
import { activeUnitCount, requestUnit, submit } from './support/directAgents.ts';
import { workUntilRunEnds } from './support/scriptedAgents.ts';
import { readRecordedHistories, recordRunHistories, recordingHistories } from './support/histories.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

/** Scenarios the committed fixtures must cover (file name prefixes). */
const SCENARIOS = [
  'caps',
  'patience',
  'lifetime',
  'continue-as-new',
  'shutdown',
  'worker-crash',
  'temporal-restart',
  'patched-run',
  'patched-shutdown',
  'fast-path',
  'one-task',
  'provider-close',
];

describe.runIf(recordingHistories())('recording histories on sqlite (HITLOOP_RECORD_HISTORIES=1)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('sqlite');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('caps: 6 assignments, cap 2, three workers', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 2 }, 6));
    const workers = ['a', 'b', 'c'].map((w) => workUntilRunEnds(env.client, runId, `caps-${w}`));
    expect((await operator.wait(runId, { pollMs: 200 })).status).toBe('completed');
    await Promise.all(workers);
    expect(await recordRunHistories(env.client, db, runId, 'caps')).not.toHaveLength(0);
  });

  it('patience: 1 s without a submission', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ no_submission_patience_seconds: 1, max_num_concurrent_units: 2 }, 3));
    expect((await operator.wait(runId, { pollMs: 200 })).endReason).toBe('patience');
    expect(await recordRunHistories(env.client, db, runId, 'patience')).not.toHaveLength(0);
  });

  it('lifetime: a held unit finishes, the rest expire', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ task_lifetime_seconds: 2, max_num_concurrent_units: 2 }, 4));
    const held = await eventually(async () => {
      const r = await requestUnit(env.client, runId, 'lifetime-worker');
      return r.outcome === 'assigned' ? r : undefined;
    }, 'a unit');
    await eventually(async () => ((await operator.status(runId)).status === 'draining' ? true : undefined), 'draining');
    if (held.outcome !== 'assigned') throw new Error('unreachable');
    await submit(env.client, held.assignmentId, held.agentId, { label: 'positive' });
    expect((await operator.wait(runId, { pollMs: 200 })).endReason).toBe('lifetime');
    expect(await recordRunHistories(env.client, db, runId, 'lifetime', { assignments: 1 })).not.toHaveLength(0);
  });

  it('continue-as-new: low thresholds, workers registering throughout', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 3 }, 12), {
      workflowOptions: { historyLimit: 120, updateLimit: 6 },
    });
    const workers = [0, 1, 2].map((i) => workUntilRunEnds(env.client, runId, `can-${i}`));
    expect((await operator.wait(runId, { pollMs: 200 })).status).toBe('completed');
    await Promise.all(workers);
    const files = await recordRunHistories(env.client, db, runId, 'continue-as-new');
    expect(files.filter((f) => f.includes('.taskrun.run')).length).toBeGreaterThan(1);
  });

  // The scenarios above were recorded before the workflow's patches: this one takes today's branches
  // (steps a shutdown can cancel, tracing), with three workers registering at once.
  it('patched-run: three workers registering together, on the current code, until the run is done', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 3 }, 6));
    const worked = await Promise.all(['a', 'b', 'c'].map((w) => workUntilRunEnds(env.client, runId, `patched-${w}`)));
    expect(worked.reduce((sum, n) => sum + n, 0)).toBe(6);
    expect((await operator.wait(runId, { pollMs: 200 })).status).toBe('completed');
    expect(await recordRunHistories(env.client, db, runId, 'patched-run')).not.toHaveLength(0);
  });

  it('patched-shutdown: on the current code, an operator cancels a run while an agent holds a unit', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 2 }, 4));
    await eventually(async () => ((await requestUnit(env.client, runId, 'patched-shutdown-worker')).outcome === 'assigned' ? true : undefined), 'a unit');
    expect((await operator.shutdown(runId)).status).toBe('cancelled');
    expect(await recordRunHistories(env.client, db, runId, 'patched-shutdown', { assignments: 1 })).not.toHaveLength(0);
  });

  // docs/design.md §6: registrations answered in the workflow task that starts the assignment workflow,
  // each worker submitting the moment it has its agent, across continue-as-new (low thresholds).
  it('fast-path: answers before the assignment workflow has started, workers submitting at once, continuing as new', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 3 }, 9), {
      workflowOptions: { historyLimit: 120, updateLimit: 6 },
    });
    const worked = await Promise.all(['a', 'b', 'c'].map((w) => workUntilRunEnds(env.client, runId, `fast-${w}`)));
    expect(worked.reduce((sum, n) => sum + n, 0)).toBe(9);
    expect((await operator.wait(runId, { pollMs: 200 })).status).toBe('completed');
    const files = await recordRunHistories(env.client, db, runId, 'fast-path');
    expect(files.filter((f) => f.includes('.taskrun.run')).length).toBeGreaterThan(1);
  });

  // docs/design.md §6 (REGISTRATION_IN_ONE_TASK): decided by a local activity in the task that accepts,
  // assignments started by an activity after the answer; overlap makes partners join open assignments;
  // workers register together and submit at once, across continue-as-new.
  it('one-task: decided in the accepting workflow task, partners joining, workers submitting at once, continuing as new', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 4, overlap: { min: 2 } }, 5), {
      workflowOptions: { historyLimit: 150, updateLimit: 8 },
    });
    const worked = await Promise.all(['a', 'b', 'c', 'd'].map((w) => workUntilRunEnds(env.client, runId, `one-task-${w}`)));
    expect(worked.reduce((sum, n) => sum + n, 0)).toBe(10);
    expect((await operator.wait(runId, { pollMs: 200 })).status).toBe('completed');
    const files = await recordRunHistories(env.client, db, runId, 'one-task', { assignments: 5 });
    expect(files.filter((f) => f.includes('.taskrun.run')).length).toBeGreaterThan(1);
  });

  // docs/design.md §5: a run that ends has its provider withdraw what is left of it (closeRunAtProvider, patch close-run-at-provider).
  it('provider-close: a run completes, then its provider is asked to withdraw what is left', async () => {
    const { operator, env, db } = stack;
    const { runId, workflowId } = await operator.launch(formConfig({ max_num_concurrent_units: 2 }, 2));
    await workUntilRunEnds(env.client, runId, 'provider-close-worker');
    await env.client.workflow.getHandle(workflowId).result();
    expect(await recordRunHistories(env.client, db, runId, 'provider-close')).not.toHaveLength(0);
  });

  it('shutdown: an operator cancels a run while an agent holds a unit', async () => {
    const { operator, env, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 2 }, 4));
    await eventually(async () => ((await requestUnit(env.client, runId, 'shutdown-worker')).outcome === 'assigned' ? true : undefined), 'a unit');
    expect(await activeUnitCount(db, runId)).toBe(2);
    expect((await operator.shutdown(runId)).status).toBe('cancelled');
    expect(await recordRunHistories(env.client, db, runId, 'shutdown', { assignments: 1 })).not.toHaveLength(0);
  });
});

describe('replaying recorded histories', () => {
  it('replays every committed history against the current workflow code without nondeterminism', async () => {
    const recorded = readRecordedHistories();
    const covered = new Set(recorded.map((r) => r.scenario));
    // These tests' own scenarios must all be there; the chaos run and the benchmarks add theirs.
    const missing = SCENARIOS.filter((scenario) => !covered.has(scenario));
    expect(missing, 'scenarios without committed histories (record with HITLOOP_RECORD_HISTORIES=1)').toEqual([]);
    const workflowBundle = await ensureWorkflowBundle();
    const results = Worker.runReplayHistories(
      // The sinks a worker injects: the bundle's tracing interceptors call them.
      { workflowBundle, replayName: 'hitloop-replay-test', sinks: workflowSinks(undefined) },
      recorded.map((r) => ({ workflowId: r.workflowId, history: r.parsed })),
    );
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of results) {
      replayed += 1;
      if (result.error) {
        const file = recorded.find((r) => r.workflowId === result.workflowId && r.runId === result.runId)?.file ?? result.workflowId;
        failures.push(`${file}: ${result.error.name}: ${result.error.message}`);
      }
    }
    expect(failures, 'histories the current workflow code cannot replay (nondeterminism)').toEqual([]);
    expect(replayed).toBe(recorded.length);
    expect(new Set(recorded.map((r) => r.workflowType))).toEqual(new Set(['TaskRunWorkflow', 'AssignmentWorkflow']));
  });

  it('recorded stories contain no failed workflow task other than the server asking to retry a command', () => {
    const failedTasks = readRecordedHistories().flatMap((r) =>
      (r.parsed.events ?? [])
        .filter((e) => e.workflowTaskFailedEventAttributes)
        .map((e) => ({ file: r.file, cause: e.workflowTaskFailedEventAttributes?.cause, message: e.workflowTaskFailedEventAttributes?.failure?.message })),
    );
    // UNHANDLED_COMMAND: a signal arrived as the workflow completed; the server retries the task (normal).
    const UNHANDLED_COMMAND = 1;
    expect(failedTasks.filter((f) => f.cause !== UNHANDLED_COMMAND)).toEqual([]);
  });
});
