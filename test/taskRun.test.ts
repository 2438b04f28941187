/**
 * The TaskRun workflow against a real Temporal dev server, on SQLite and on PostgreSQL:
 * concurrency caps, completion, patience, lifetime, live cap changes, continue-as-new.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Agent, ProviderCall, Unit } from '../model/entities.ts';
import { runStatusQuery, taskRunWorkflowId } from '../workflows/definitions.ts';
import { formConfig } from './support/configs.ts';
import { activeUnitCount, peakActiveFromProviderRecord, requestUnit, submit, workUntilRefused } from './support/directAgents.ts';
import { eventually, startStack, type Dialect, type Stack } from './support/stack.ts';

/**
 * The run's end, or after 90 s a failure that says where it stood: the run's own view, the units'
 * statuses and what each worker last did (a silent test timeout explains nothing).
 */
async function waitExplainingDelay(stack: Stack, runId: string, trace: string[]): Promise<Awaited<ReturnType<Stack['operator']['wait']>>> {
  let last: unknown;
  const ended = stack.operator.wait(runId, { pollMs: 200, onProgress: (s) => (last = s) });
  const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 90_000).unref());
  const first = await Promise.race([ended, late]);
  if (first !== 'late') return first;
  const units = (await stack.db.em().find(Unit, { taskRun: runId }, { orderBy: { id: 'asc' } })).map((u) => `${u.id}:${u.status}`);
  const history = await stack.env.client.workflow.getHandle(taskRunWorkflowId(runId)).fetchHistory();
  const lastEvents = (history.events ?? []).slice(-15).map((e) => `${e.eventId} ${e.eventType}`);
  throw new Error(
    [
      `run ${runId} had not ended after 90 s`,
      `its status: ${JSON.stringify(last)}`,
      `units: ${units.join(' ')}`,
      `last history events: ${lastEvents.join(', ')}`,
      `workers, last lines:`,
      ...trace.slice(-30),
    ].join('\n'),
  );
}

describe.each<Dialect>(['sqlite', 'postgresql'])('TaskRun workflow on %s', (dialect) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(dialect);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([1, 2, 3, 4, 5])('never has more than %i units launched-or-assigned and completes', async (cap) => {
    const { operator, db, env } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: cap }, 20));
    let peakSeen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakSeen = Math.max(peakSeen, await activeUnitCount(db, runId));
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    const trace: string[] = [];
    onTestFailed(() => console.error(`workers of run ${runId}, last lines:\n${trace.slice(-40).join('\n')}`));
    const workers = Array.from({ length: cap + 1 }, (_, i) => workUntilRefused(env.client, runId, `w${cap}-${i}`, undefined, trace));
    const final = await waitExplainingDelay(stack, runId, trace);
    sampling = false;
    await sampler;
    const done = await Promise.all(workers);

    expect(final.status).toBe('completed');
    expect(final.units.completed).toBe(20);
    expect(done.reduce((a, b) => a + b, 0)).toBe(20);
    expect(peakSeen).toBeGreaterThan(0);
    expect(peakSeen).toBeLessThanOrEqual(cap);
    expect(await peakActiveFromProviderRecord(db, runId)).toBeLessThanOrEqual(cap);
    // One launch call per unit: the provider was never asked twice.
    const launches = await db.em().find(ProviderCall, { operation: 'launchUnit', target: { $like: `${runId}-%` } });
    expect(new Set(launches.map((l) => l.target)).size).toBe(20);
    expect(launches).toHaveLength(20);
  });

  it('shuts down after no_submission_patience_seconds without a submission, expiring every unit', async () => {
    const { operator, db } = stack;
    const { runId } = await operator.launch(formConfig({ no_submission_patience_seconds: 1, max_num_concurrent_units: 2 }, 4));
    const final = await operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('cancelled');
    expect(final.endReason).toBe('patience');
    expect(final.units.expired).toBe(4);
    const statuses = (await db.em().find(Unit, { taskRun: runId })).map((u) => u.status);
    expect(statuses).toEqual(['expired', 'expired', 'expired', 'expired']);
  });

  it('at the end of its lifetime launches nothing more, lets held units finish and expires the rest', async () => {
    const { operator, db, env } = stack;
    const { runId } = await operator.launch(formConfig({ task_lifetime_seconds: 3, max_num_concurrent_units: 2 }, 6));
    // Retried until the first units are launched.
    const held = await eventually(async () => {
      const r = await requestUnit(env.client, runId, 'lifetime-worker');
      return r.outcome === 'assigned' ? r : undefined;
    }, 'a unit for the first worker');
    if (held.outcome !== 'assigned') return;
    await eventually(async () => ((await operator.status(runId)).status === 'draining' ? true : undefined), 'the run to drain');
    const launchesAtDrain = await db.em().count(ProviderCall, { operation: 'launchUnit', target: { $like: `${runId}-%` } });
    const late = await requestUnit(env.client, runId, 'late-worker');
    expect(late).toMatchObject({ outcome: 'refused', reason: 'run_not_running' });
    await submit(env.client, held.assignmentId, held.agentId, { label: 'positive' });
    const final = await operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('completed');
    expect(final.endReason).toBe('lifetime');
    expect(final.units.completed).toBe(1);
    expect(final.units.expired).toBe(5);
    expect(await db.em().count(ProviderCall, { operation: 'launchUnit', target: { $like: `${runId}-%` } })).toBe(launchesAtDrain);
  });

  it('takes a cap changed live without restarting anything, and refuses a bad value', async () => {
    const { operator, db } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 1 }, 10));
    await eventually(async () => ((await activeUnitCount(db, runId)) === 1 ? true : undefined), 'one launched unit');
    await expect(operator.changeLimits(runId, { max_num_concurrent_units: -3 })).rejects.toThrow(/max_num_concurrent_units/);
    const limits = await operator.changeLimits(runId, { max_num_concurrent_units: 4, task_reward: 0.75 });
    expect(limits.max_num_concurrent_units).toBe(4);
    await eventually(async () => ((await activeUnitCount(db, runId)) === 4 ? true : undefined), 'four launched units');
    const history = await stack.env.client.workflow.getHandle(taskRunWorkflowId(runId)).fetchHistory();
    const updates = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(updates.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name)).toContain('changeRunLimits');
    const shut = await operator.shutdown(runId);
    expect(shut.status).toBe('cancelled');
    expect(shut.endReason).toBe('operator');
    expect(shut.units.expired).toBe(10);
    // The new reward applies to units launched after the change.
    const pays = new Set((await db.em().find(Unit, { taskRun: runId, launchedAt: { $ne: null } })).map((u) => u.pay));
    expect(pays).toEqual(new Set([0.5, 0.75]));
  });

  it('continues as new with registrations and submissions arriving around it, losing nothing', async () => {
    const { operator, db, env } = stack;
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: 3 }, 30), {
      workflowOptions: { historyLimit: 150, updateLimit: 12 },
    });
    const workers = Array.from({ length: 4 }, (_, i) => workUntilRefused(env.client, runId, `can-${i}`));
    const final = await operator.wait(runId, { pollMs: 200 });
    await Promise.all(workers);
    expect(final.status).toBe('completed');
    expect(final.units.completed).toBe(30);
    const agents = await db.em().find(Agent, { taskRun: runId, status: 'completed' });
    expect(agents).toHaveLength(30);
    expect(new Set(agents.map((a) => a.unit.id)).size).toBe(30);
    const view = await env.client.workflow.getHandle(taskRunWorkflowId(runId)).query(runStatusQuery);
    expect(view.continuedAsNewTimes).toBeGreaterThan(0);
    const runs = await eventually(async () => {
      const found = [];
      for await (const wf of env.client.workflow.list({ query: `WorkflowId = '${taskRunWorkflowId(runId)}'` })) found.push(wf);
      return found.length > view.continuedAsNewTimes ? found : undefined;
    }, 'every run of the workflow in visibility');
    expect(runs.length).toBe(view.continuedAsNewTimes + 1);
  });
});
