/**
 * The registration activity (`assignUnitsToWorkers`, registration/assign.ts) against a real database,
 * SQLite and PostgreSQL, without Temporal: the activity runs in a mock activity context, so a rule
 * change is checked in seconds. The full-stack scenarios are in taskRun, qualifying and gateway tests.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskRunActivities, type TaskRunActivities } from '../activities/taskRunActivities.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { Agent, Unit, Worker } from '../model/entities.ts';
import { agentIdFor } from '../registration/ids.ts';
import type { RunLimits, UnitRequestResult } from '../workflows/definitions.ts';
import type { RunPlan } from '../workflows/runPlan.ts';
import { formConfig } from './support/configs.ts';
import { TEST_DIALECTS, createTestDatabase } from './support/databases.ts';
import { testLog, testSettings } from './support/stack.ts';

/**
 * Statements (BEGIN and COMMIT included) one `assignUnitsToWorkers` call of up to 50 new workers may
 * send in a plain run: reading the run, the workers (and making the new ones), their agents and the
 * free units once, then one write per table. One transaction per registration took 17 for one and
 * 751 (SQLite) / 801 (PostgreSQL) for 50; the batch takes 11 for either.
 */
const BATCH_STATEMENTS_AT_MOST = 12;

/** An activity execution of a TaskRun workflow run (another after a continue-as-new). */
function execution(activityId: string, workflowRun = 'wf-run-1') {
  const env = new MockActivityEnvironment({ activityId, workflowExecution: { workflowId: 'taskrun-test', runId: workflowRun } });
  return { run: <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args) as Promise<R> };
}

describe.each(TEST_DIALECTS)('registration activity on %s', (dialect) => {
  let db: Database;
  let drop: () => Promise<void>;
  let activities: TaskRunActivities;
  let url: string;
  let runs = 0;
  beforeAll(async () => {
    const database = await createTestDatabase(dialect);
    drop = database.drop;
    url = database.url;
    db = await openDatabase(database.url);
    activities = createTaskRunActivities({ db, settings: testSettings({ databaseUrl: database.url }), log: testLog });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  /** A run with its units created and launched, as the TaskRun workflow leaves it before registrations. */
  async function launchedRun(overrides: Record<string, unknown> = {}, assignments = 5): Promise<{ runId: string; plan: RunPlan }> {
    const runId = `r-reg-${dialect}-${runs++}`;
    const config = formConfig(overrides, assignments);
    const env = execution(`launch-${runId}`);
    const plan = await env.run(activities.validateTaskRunConfig, { runId, config });
    await env.run(activities.registerTaskRun, { runId, workflowId: `taskrun-${runId}`, config });
    const { units } = await env.run(activities.createAssignments, { runId });
    await env.run(activities.setUpProviderForRun, { runId });
    await env.run(activities.launchUnits, { runId, batch: 1, count: units, reward: plan.limits.task_reward });
    return { runId, plan };
  }

  const register = (activityId: string, runId: string, limits: RunLimits, workers: Array<[string, string]>, workflowRun?: string): Promise<UnitRequestResult[]> =>
    execution(activityId, workflowRun).run(activities.assignUnitsToWorkers, {
      runId,
      limits,
      requests: workers.map(([providerWorkerId, registrationKey]) => ({ provider: 'mock', providerWorkerId, registrationKey })),
    });

  const assigned = (r: UnitRequestResult | undefined) => {
    if (r?.outcome !== 'assigned') throw new Error(`expected a unit, got ${JSON.stringify(r)}`);
    return r;
  };

  it('units in data order; the agent id derives from (run, worker, key), whatever the batch', async () => {
    const { runId, plan } = await launchedRun();
    const results = await register('d1', runId, plan.limits, [
      ['alice', 'k-alice'],
      ['bob', 'k-bob'],
    ]);
    const [a, b] = results.map(assigned);
    expect([a!.unitId, b!.unitId]).toEqual([`${runId}-a0-u0`, `${runId}-a1-u0`]);
    const alice = await db.em().findOneOrFail(Worker, { provider: 'mock', providerWorkerId: 'alice' });
    expect(a!.agentId).toBe(agentIdFor(runId, alice.id, 'k-alice'));
    expect(a!.newlyAssigned).toBe(true);
    const row = await db.em().findOneOrFail(Agent, a!.agentId);
    expect([row.status, row.decidedBy, row.registrationKey]).toEqual(['accepted', 'wf-run-1', 'k-alice']);
  });

  it('the deciding workflow run finds its agents again as new (it hands each over once); a later run finds them not new', async () => {
    const { runId, plan } = await launchedRun();
    const first = assigned((await register('d2', runId, plan.limits, [['carol', 'k-carol']]))[0]);
    // A retried activity, or a local activity re-run with another batch after a workflow-task retry.
    const retried = assigned((await register('d2b', runId, plan.limits, [['dan', 'k-dan'], ['carol', 'k-carol']]))[1]);
    expect(retried).toEqual(first);
    // The register retried after a continue-as-new: the same agent, not new (the gateway says resumed).
    const again = assigned((await register('d3', runId, plan.limits, [['carol', 'k-carol']], 'wf-run-2'))[0]);
    expect(again).toEqual({ ...first, newlyAssigned: false });
    expect(await db.em().count(Agent, { taskRun: runId, worker: { providerWorkerId: 'carol' } })).toBe(1);
    expect(await db.em().count(Unit, { taskRun: runId, status: 'assigned' })).toBe(2);
  });

  it('a legacy decision (agent id chosen by the workflow) is still recognised on its retry', async () => {
    const { runId, plan } = await launchedRun();
    const env = execution('legacy');
    const request = { provider: 'mock', providerWorkerId: 'dave', registrationKey: 'k-dave', agentId: 'legacy-agent' };
    const first = assigned((await env.run(activities.assignUnitsToWorkers, { runId, limits: plan.limits, requests: [request] }))[0]);
    // Made before decidedBy existed: only the workflow's own id tells it is this decision's agent.
    await db.em().nativeUpdate(Agent, { id: first.agentId }, { id: 'legacy-agent', decidedBy: null });
    const retried = assigned((await env.run(activities.assignUnitsToWorkers, { runId, limits: plan.limits, requests: [request] }))[0]);
    expect([retried.agentId, retried.newlyAssigned]).toEqual(['legacy-agent', true]);
  });

  it('an ended registration is refused; a new key gets a unit of another assignment', async () => {
    const { runId, plan } = await launchedRun({ units_per_assignment: 2 }, 3);
    const first = assigned((await register('d4', runId, plan.limits, [['erin', 'k-erin-1']]))[0]);
    await db.em().nativeUpdate(Agent, { id: first.agentId }, { status: 'returned' });
    const [again] = await register('d5', runId, plan.limits, [['erin', 'k-erin-1']]);
    expect(again).toMatchObject({ outcome: 'refused', reason: 'no_units_available', detail: expect.stringContaining('already ended') });
    const second = assigned((await register('d6', runId, plan.limits, [['erin', 'k-erin-2']]))[0]);
    // Never two units of one assignment (item) for one worker, even after returning one.
    expect(second.assignmentId).not.toBe(first.assignmentId);
  });

  it('caps are exact: allowed_concurrent and maximum_units_per_worker, then no unit left', async () => {
    const { runId, plan } = await launchedRun({}, 3);
    const limits = { ...plan.limits, allowed_concurrent: 1, maximum_units_per_worker: 2 };
    const [one, held] = await register('d7', runId, limits, [
      ['frank', 'k-f1'],
      ['frank', 'k-f2'],
    ]);
    assigned(one);
    expect(held).toMatchObject({ outcome: 'refused', reason: 'too_many_concurrent' });
    await db.em().nativeUpdate(Agent, { id: assigned(one).agentId }, { status: 'completed' });
    assigned((await register('d8', runId, limits, [['frank', 'k-f3']]))[0]);
    await db.em().nativeUpdate(Agent, { worker: { providerWorkerId: 'frank' } }, { status: 'completed' });
    expect((await register('d9', runId, limits, [['frank', 'k-f4']]))[0]).toMatchObject({ reason: 'max_for_task' });
    assigned((await register('d10', runId, limits, [['gina', 'k-g1']]))[0]);
    expect((await register('d11', runId, limits, [['hank', 'k-h1']]))[0]).toMatchObject({ reason: 'no_units_available' });
  });

  it('concurrent decisions never give one unit twice', async () => {
    const { runId, plan } = await launchedRun({}, 6);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => register(`c${i}`, runId, plan.limits, [[`crowd-${i}`, `k-crowd-${i}`]])),
    );
    // A decision may lose a race on PostgreSQL (the unit moved under it): the workflow retries it, and so do we.
    for (const [i, o] of outcomes.entries()) if (o.status === 'rejected') await register(`c${i}`, runId, plan.limits, [[`crowd-${i}`, `k-crowd-${i}`]]);
    const agents = await db.em().find(Agent, { taskRun: runId });
    expect(agents).toHaveLength(6);
    expect(new Set(agents.map((a) => a.unit.id)).size).toBe(6);
    expect(await db.em().count(Unit, { taskRun: runId, status: 'launched' })).toBe(0);
  });

  it('within one batch a worker is seen as the batch leaves them: the same key answers with its agent, another key gets the next item', async () => {
    const { runId, plan } = await launchedRun({ units_per_assignment: 2 }, 3);
    const [first, repeat, second, other] = await register('b1', runId, plan.limits, [
      ['ivy', 'k-ivy-1'],
      ['ivy', 'k-ivy-1'],
      ['ivy', 'k-ivy-2'],
      ['jon', 'k-jon'],
    ]);
    expect(repeat).toEqual(first);
    // Never two units of one item for one worker; the other worker gets the item's second unit.
    expect([assigned(first).unitId, assigned(second).unitId, assigned(other).unitId]).toEqual([`${runId}-a0-u0`, `${runId}-a1-u0`, `${runId}-a0-u1`]);
    const positions = await Promise.all(
      [first, second].map(async (r) => ((await db.em().findOneOrFail(Agent, assigned(r).agentId)).initData as { position?: unknown }).position),
    );
    expect(positions).toEqual([
      { index: 1, upTo: 3 },
      { index: 2, upTo: 3 },
    ]);
  });

  it('overlap: an item claimed in one run of the task is not given to the worker again in another, nor twice in one batch', async () => {
    const taskName = `reg-overlap-${dialect}-${runs}`;
    const data = [{ text: 'same item' }, { text: 'same item' }, { text: 'another' }];
    const first = await launchedRun({ task_name: taskName, overlap: { min: 2 }, data });
    // The first two assignments are one item (same data): the batch's claim covers both.
    const [a, b] = await register('o1', first.runId, first.plan.limits, [
      ['kim', 'k-kim-1'],
      ['kim', 'k-kim-2'],
    ]);
    expect([assigned(a).assignmentId, assigned(b).assignmentId]).toEqual([`${first.runId}-a0`, `${first.runId}-a2`]);
    const second = await launchedRun({ task_name: taskName, overlap: { min: 2 }, data });
    const [c] = await register('o2', second.runId, second.plan.limits, [['kim', 'k-kim-3']]);
    expect(c).toMatchObject({ outcome: 'refused', reason: 'no_units_available' });
  });

  it('a worker who had more items than the batch reads ahead still gets the next free one', async () => {
    const { runId, plan } = await launchedRun({ units_per_assignment: 2 }, 60);
    const keys = Array.from({ length: 55 }, (_, i): [string, string] => ['lee', `k-lee-${i}`]);
    expect((await register('f1', runId, plan.limits, keys)).map((r) => assigned(r).assignmentId)).toEqual(
      keys.map((_, i) => `${runId}-a${i}`),
    );
    // The first free units in data order are the second units of lee's 55 items.
    const [lee, may] = await register('f2', runId, plan.limits, [
      ['lee', 'k-lee-55'],
      ['may', 'k-may'],
    ]);
    expect([assigned(lee).unitId, assigned(may).unitId]).toEqual([`${runId}-a55-u0`, `${runId}-a0-u1`]);
  });

  it('a batch of 50 registrations is a few statements, not a few per registration', async () => {
    const { runId, plan } = await launchedRun({}, 60);
    const statements: string[] = [];
    const counted = await openDatabase(url, { migrate: false, onQuery: (sql) => statements.push(sql) });
    try {
      const countedActivities = createTaskRunActivities({ db: counted, settings: testSettings({ databaseUrl: url }), log: testLog });
      const decide = async (activityId: string, workers: Array<[string, string]>) => {
        statements.length = 0;
        const results = await execution(activityId).run(countedActivities.assignUnitsToWorkers, {
          runId,
          limits: plan.limits,
          requests: workers.map(([providerWorkerId, registrationKey]) => ({ provider: 'mock', providerWorkerId, registrationKey })),
        });
        return { results, statements: [...statements] };
      };
      const one = await decide('count-1', [['solo', 'k-solo']]);
      assigned(one.results[0]);
      const batch = await decide(
        'count-50',
        Array.from({ length: 50 }, (_, i): [string, string] => [`many-${i}`, `k-many-${i}`]),
      );
      const agents = batch.results.map(assigned);
      expect(new Set(agents.map((a) => a.unitId)).size).toBe(50);
      // Each unit assigned to its own worker, written for the whole batch in one UPDATE.
      const units = await db.em().find(Unit, { id: { $in: agents.map((a) => a.unitId) } });
      const workerOfUnit = new Map(units.map((u) => [u.id, [u.status, u.worker?.id]]));
      for (const a of agents) expect(workerOfUnit.get(a.unitId)).toEqual(['assigned', a.workerId]);
      // Every one new, so the worker rows are written too; BEGIN and COMMIT count.
      console.log(`${dialect}: one registration ${one.statements.length} statements, a batch of 50 ${batch.statements.length}`);
      expect(one.statements.length).toBeLessThanOrEqual(BATCH_STATEMENTS_AT_MOST);
      expect(batch.statements.length).toBeLessThanOrEqual(BATCH_STATEMENTS_AT_MOST);
      // The same batch again (a retried activity) finds its agents: fewer statements still, nothing written.
      const retried = await decide('count-50', batch.results.map((_, i): [string, string] => [`many-${i}`, `k-many-${i}`]));
      expect(retried.results).toEqual(batch.results);
      expect(retried.statements.length).toBeLessThanOrEqual(BATCH_STATEMENTS_AT_MOST);
    } finally {
      await counted.close();
    }
  });
});
