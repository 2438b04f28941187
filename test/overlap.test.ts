/**
 * Independent overlap end to end (docs/design.md §2, §3), on a real Temporal dev server: simulated
 * workers of seeded accuracy (60-95 %) against a known truth. No worker twice on one item, no
 * waiting state, min/max respected, dynamic overlap spends fewer units than fixed overlap at about
 * the same accuracy, the aggregate equals crowd-kit's on the exported rows, live overlap changes,
 * items whose units all expired reported unaggregated, config errors refused naming the key.
 */
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateRunConfig } from '../config/validateRun.ts';
import { aggregatedRows } from '../export/aggregated.ts';
import { exportRunTo } from '../export/exportRun.ts';
import { claimItem } from '../activities/itemClaims.ts';
import { Agent, Assignment, ItemAggregate, OutboxMessage, TaskRun, Unit } from '../model/entities.ts';
import { formConfig } from './support/configs.ts';
import { crowdKitDawidSkene } from './support/crowdKit.ts';
import { requestUnit, submit } from './support/directAgents.ts';
import { WorkflowCalls } from '../gateway/workflowCalls.ts';
import { agentReturnedSignal } from '../workflows/definitions.ts';
import { simulatedCrowd, type SimulatedCrowd } from './support/simulatedCrowd.ts';
import { eventually, startStack, testLog, type Dialect, type Stack } from './support/stack.ts';
import { createAggregationActivities } from '../activities/aggregationActivities.ts';
import { exportAggregatedTo } from '../export/aggregated.ts';
import { createQualificationService } from '../qualifications/service.ts';
import { grantAccuracy, itemsOfRun, workerQuality } from '../review/workerQuality.ts';

const ITEMS = 8;
const WORKERS = 6;

/** A simulated worker: takes units until the run stops taking workers, answering as its seeded accuracy says. */
async function crowdWorker(client: Client, runId: string, worker: string, crowd: SimulatedCrowd): Promise<number> {
  let done = 0;
  for (;;) {
    // A page asks again after a failed request (on a loaded machine the run's workflow task may time out and be retried).
    const result = await requestUnit(client, runId, worker, randomUUID()).catch(async (err: unknown) => {
      console.warn(`${worker}: register failed, asking again: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 2_000));
      return null;
    });
    if (result === null) continue;
    if (result.outcome !== 'assigned') {
      if (result.outcome === 'refused' && result.reason === 'no_units_available') {
        // Near the end most items are this worker's already: ask seldom, each request is an update on the run.
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      return done;
    }
    const index = Number(result.assignmentId.slice(result.assignmentId.lastIndexOf('-a') + 2));
    await submit(client, result.assignmentId, result.agentId, { label: crowd.answer(worker, index) });
    done += 1;
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface RunReport {
  runId: string;
  units: number;
  accuracy: number;
  unitsPerItem: number[];
}

async function runWithCrowd(stack: Stack, crowd: SimulatedCrowd, overrides: Record<string, unknown>): Promise<RunReport> {
  const config = formConfig(overrides, ITEMS);
  config.data = crowd.truth.map((_, i) => ({ text: `sentence ${i}` }));
  const { runId } = await stack.operator.launch(config);
  const workers = [...crowd.accuracy.keys()].map((w) => crowdWorker(stack.env.client, runId, `${w}`, crowd));
  const final = await stack.operator.wait(runId, { pollMs: 250 });
  await Promise.all(workers);
  expect(final.status).toBe('completed');
  const em = stack.db.em();
  const units = await em.find(Unit, { taskRun: runId, kind: 'normal' }, { populate: ['assignment'] });
  const unitsPerItem = Array.from({ length: ITEMS }, (_, i) => units.filter((u) => u.assignment.getEntity().index === i).length);
  const rows = await aggregatedRows(stack.db, runId);
  const accuracy = rows.filter((r) => r.labels.label === crowd.truth[r.item_index]).length / ITEMS;
  return { runId, units: units.length, accuracy, unitsPerItem };
}

async function expectNoWorkerTwiceAndNoWaiting(stack: Stack, runId: string): Promise<void> {
  const em = stack.db.em();
  const agents = await em.find(Agent, { taskRun: runId }, { fields: ['assignment', 'worker', 'status'] });
  const pairs = agents.map((a) => `${a.assignment.id}/${a.worker.id}`);
  expect(new Set(pairs).size).toBe(pairs.length);
  expect(agents.filter((a) => a.status === 'waiting')).toEqual([]);
  const told = await em.find(OutboxMessage, { agent: { taskRun: runId }, kind: 'status' });
  expect(told.length).toBeGreaterThan(0);
  expect(told.filter((m) => (m.payload as { status?: string }).status === 'waiting')).toEqual([]);
}

describe('overlap config errors are refused naming the key', () => {
  it.each([
    [{ overlap: { min: 3, max: 2 } }, 'overlap.max: 2 is not allowed: must be >= overlap.min (3)'],
    [{ overlap: { min: 2, max: 4, confidence: 1.5 }, aggregate: { fields: ['label'] } }, 'overlap.confidence: 1.5 is not allowed'],
    [{ overlap: { min: 2, max: 4, confidence: 0.8 } }, 'overlap.confidence: 0.8 is not allowed: needs aggregate'],
    [{ overlap: { min: 2 }, aggregate: { fields: ['lable'] } }, 'aggregate.fields[0]: "lable" is not allowed: must be a field of the blueprint\'s form: label (did you mean "label"?)'],
    [{ overlap: { min: 2 }, units_per_assignment: 2 }, 'units_per_assignment: 2 is not allowed: must be 1 with overlap'],
    [{ aggregate: { fields: ['label'] } }, 'is not allowed: needs overlap'],
  ])('%j', (overrides, message) => {
    expect(() => validateRunConfig(formConfig(overrides))).toThrow(message);
  });
});

describe.each<Dialect>(['sqlite', 'postgresql'])('overlap on %s', (dialect) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(dialect);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Launch, then wait until the run offers its units: a register sent before that is refused no_units_available. */
  async function launchOffering(config: Record<string, unknown>, units: number): Promise<{ runId: string }> {
    const { runId } = await stack.operator.launch(config);
    await eventually(async () => ((await stack.db.em().count(Unit, { taskRun: runId, status: 'launched' })) >= units ? true : undefined), `${units} launched units`);
    return { runId };
  }

  it('aggregation retried after a crash (same submission, same stored state) adds no second unit and stores the same aggregate', async () => {
    const { runId } = await launchOffering(
      formConfig({ overlap: { min: 2, max: 3, confidence: 0.9 }, aggregate: { fields: ['label'], method: 'majority' }, no_submission_patience_seconds: 600 }, 1),
      2,
    );
    const assignmentId = `${runId}-a0`;
    for (const [worker, label] of [['first-labeller', 'positive'], ['second-labeller', 'negative']] as const) {
      const taken = await requestUnit(stack.env.client, runId, worker);
      expect(taken.outcome).toBe('assigned');
      await submit(stack.env.client, assignmentId, (taken as { agentId: string }).agentId, { label });
    }
    const em = () => stack.db.em();
    // Two votes that disagree (confidence 0.5, below 0.9): the workflow's own aggregation added a third unit.
    await eventually(async () => ((await em().count(Unit, { assignment: assignmentId, kind: 'normal' })) === 3 ? true : undefined), 'the unit added by dynamic overlap');
    const stored = await eventually(() => em().findOne(ItemAggregate, { assignment: assignmentId }).then((a) => a ?? undefined), 'the stored aggregate');
    // What a retry after a worker crash does: the same activity again, on what the first attempt stored.
    const { aggregateItem } = createAggregationActivities({ db: stack.db, settings: stack.settings, log: testLog });
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(await aggregateItem({ runId, assignmentId })).toEqual({ units: 3, confidence: stored.confidence });
    }
    expect(await em().count(Unit, { assignment: assignmentId, kind: 'normal' })).toBe(3);
    const again = await em().findOneOrFail(ItemAggregate, { assignment: assignmentId });
    expect({ fields: again.fields, confidence: again.confidence, submitted: again.submitted, units: again.units }).toEqual({
      fields: stored.fields,
      confidence: stored.confidence,
      submitted: stored.submitted,
      units: stored.units,
    });
    await stack.operator.shutdown(runId);
  });

  it('the database refuses a second claim of one item by one worker', async () => {
    const { runId } = await launchOffering(formConfig({ overlap: { min: 2 }, no_submission_patience_seconds: 600 }, 1), 2);
    const first = await requestUnit(stack.env.client, runId, 'claimer');
    expect(first.outcome).toBe('assigned');
    const em = stack.db.em();
    const run = await em.findOneOrFail(TaskRun, runId);
    const assignment = await em.findOneOrFail(Assignment, `${runId}-a0`);
    await expect(claimItem(em, { taskId: run.task.id, assignment, workerId: (first as { workerId: string }).workerId, unitId: `${runId}-a0-u1` })).rejects.toThrow();
    // The same worker asking again gets nothing: the other unit is of the same item.
    const second = await requestUnit(stack.env.client, runId, 'claimer');
    expect(second).toMatchObject({ outcome: 'refused', reason: 'no_units_available' });
    await stack.operator.shutdown(runId);
  });

  it('a worker who returned a unit never gets that item again, in this run or the next of the task', async () => {
    const config = formConfig({ overlap: { min: 2 } }, 1);
    const { runId } = await launchOffering(config, 2);
    const taken = await requestUnit(stack.env.client, runId, 'returner');
    expect(taken.outcome).toBe('assigned');
    const other = await requestUnit(stack.env.client, runId, 'other');
    expect(other.outcome).toBe('assigned');
    await new WorkflowCalls(stack.env.client).signalAssignment((taken as { assignmentId: string }).assignmentId, agentReturnedSignal, {
      agentId: (taken as { agentId: string }).agentId,
    });
    // Its unit is back in the pool, but not for the worker who returned it.
    for (let i = 0; i < 3; i++) {
      expect(await requestUnit(stack.env.client, runId, 'returner')).toMatchObject({ outcome: 'refused', reason: 'no_units_available' });
    }
    await stack.operator.shutdown(runId);
    const next = await launchOffering({ ...config }, 2);
    expect(await requestUnit(stack.env.client, next.runId, 'returner')).toMatchObject({ outcome: 'refused', reason: 'no_units_available' });
    expect((await requestUnit(stack.env.client, next.runId, 'newcomer')).outcome).toBe('assigned');
    await stack.operator.shutdown(next.runId);
  });

  it('overlap.max and overlap.confidence change live; bad changes are refused naming the key', async () => {
    const { runId } = await stack.operator.launch(
      formConfig({ overlap: { min: 2, max: 3, confidence: 0.7 }, aggregate: { fields: ['label'] } }, 2),
    );
    await stack.operator.changeLimits(runId, { 'overlap.max': 5, 'overlap.confidence': 0.9 });
    expect((await stack.db.em().findOneOrFail(TaskRun, runId)).liveOverlap).toEqual({ max: 5, confidence: 0.9 });
    await expect(stack.operator.changeLimits(runId, { 'overlap.max': 1 })).rejects.toThrow('overlap.max: 1 is not allowed: must be >= overlap.min (2)');
    await expect(stack.operator.changeLimits(runId, { 'overlap.confidence': 2 })).rejects.toThrow('overlap.confidence');
    const fixed = await stack.operator.launch(formConfig({}, 1));
    await expect(stack.operator.changeLimits(fixed.runId, { 'overlap.max': 3 })).rejects.toThrow('has no overlap');
    await stack.operator.shutdown(runId);
    await stack.operator.shutdown(fixed.runId);
  });

  it('an item whose units all expired is reported unaggregated', async () => {
    const { runId } = await stack.operator.launch(formConfig({ overlap: { min: 2 }, aggregate: { fields: ['label'] } }, 3));
    await stack.operator.shutdown(runId);
    const rows = await aggregatedRows(stack.db, runId);
    expect(rows.map((r) => [r.item_index, r.status, r.labels])).toEqual([
      [0, 'unaggregated', {}],
      [1, 'unaggregated', {}],
      [2, 'unaggregated', {}],
    ]);
  });

  it('aggregates after each submission; review by item, worker quality granted as a qualification, CSV export', async () => {
    const { runId } = await launchOffering(formConfig({ overlap: { min: 2 }, aggregate: { fields: ['label'], method: 'majority' } }, 2), 4);
    // alice and bob agree on item 0 and disagree on item 1: a tie there.
    const answers: Record<string, string[]> = { alice: ['positive', 'negative'], bob: ['positive', 'positive'] };
    for (const worker of ['alice', 'bob']) {
      for (let i = 0; i < 2; i++) {
        const result = await requestUnit(stack.env.client, runId, worker);
        if (result.outcome !== 'assigned') throw new Error(`${worker} got no unit: ${JSON.stringify(result)}`);
        const index = Number(result.assignmentId.slice(result.assignmentId.lastIndexOf('-a') + 2));
        await submit(stack.env.client, result.assignmentId, result.agentId, { label: answers[worker]![index]! });
      }
    }
    expect((await stack.operator.wait(runId, { pollMs: 250 })).status).toBe('completed');
    const items = await itemsOfRun(stack.db.em(), runId);
    expect(items.map((i) => [i.status, i.fields.label?.label, i.fields.label?.tied])).toEqual([
      ['aggregated', 'positive', ['positive']],
      ['aggregated', 'negative', ['negative', 'positive']],
    ]);
    // The activity stored each item's aggregate as it went.
    const stored = await stack.db.em().find(ItemAggregate, { taskRun: runId }, { orderBy: { assignment: 'asc' } });
    expect(stored.map((a) => [a.submitted, a.confidence])).toEqual([
      [2, 1],
      [2, 0.5],
    ]);
    const workers = await workerQuality(stack.db.em(), runId);
    expect(workers.map((w) => [w.providerWorkerId, w.agreement])).toEqual([
      ['alice', 1],
      ['bob', 0.5],
    ]);
    const service = createQualificationService({ db: stack.db, settings: stack.settings, log: testLog });
    const name = `accuracy-${runId}`;
    await service.create({ name });
    await grantAccuracy(service, runId, name, workers);
    const grants = await service.grantsOf({ name });
    expect(Object.fromEntries(grants.map((g) => [g.providerWorkerId, g.value]))).toEqual({ alice: 100, bob: 50 });
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await exportAggregatedTo(stack.db, runId, out, 'csv');
    const lines = Buffer.concat(chunks).toString('utf8').trim().split('\r\n');
    expect(lines[0]).toBe('run_id,assignment_id,item_index,status,method,confidence,label_label,confidence_label,votes_label,tied_label,workers,input');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toContain(',aggregated,majority,0.5,negative,0.5,');
  });

  it.runIf(dialect === 'sqlite')(
    'simulated workers: fixed vs dynamic overlap, bounds, no worker twice, no waiting, crowd-kit on the exported rows',
    { timeout: 900_000 },
    async () => {
      const crowd = simulatedCrowd({ seed: 42, items: ITEMS, workers: WORKERS });
      const fixed = await runWithCrowd(stack, crowd, { overlap: { min: 5 }, aggregate: { fields: ['label'], method: 'dawid_skene' } });
      const dynamic = await runWithCrowd(stack, crowd, {
        overlap: { min: 3, max: 5, confidence: 0.75 },
        aggregate: { fields: ['label'], method: 'majority' },
      });
      console.log(
        `${ITEMS} items, ${WORKERS} workers (60-95 %): fixed overlap 5 (Dawid-Skene) -> ${fixed.units} units, ${(fixed.accuracy * 100).toFixed(1)} % correct; ` +
          `dynamic 3..5 @0.75 (majority) -> ${dynamic.units} units (per item ${dynamic.unitsPerItem.join(' ')}), ${(dynamic.accuracy * 100).toFixed(1)} % correct`,
      );
      for (const report of [fixed, dynamic]) await expectNoWorkerTwiceAndNoWaiting(stack, report.runId);
      expect(fixed.unitsPerItem.every((n) => n === 5)).toBe(true);
      expect(dynamic.unitsPerItem.every((n) => n >= 3 && n <= 5)).toBe(true);
      expect(dynamic.units).toBeLessThan(fixed.units);
      // Which worker gets which item depends on timing; at most one item's worth below fixed overlap.
      expect(dynamic.accuracy).toBeGreaterThanOrEqual(fixed.accuracy - 1 / ITEMS);

      // crowd-kit's Dawid-Skene on the exported (item, worker, label) rows of the Dawid-Skene run gives the same labels.
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      await exportRunTo(stack.db, fixed.runId, out, { format: 'jsonl' });
      const exported = Buffer.concat(chunks)
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { assignment_id: string; worker_id: string; data: { label: string } });
      expect(exported).toHaveLength(fixed.units);
      const theirs = crowdKitDawidSkene(exported.map((r) => ({ item: r.assignment_id, worker: r.worker_id, label: r.data.label })));
      const ours = await aggregatedRows(stack.db, fixed.runId);
      const same = ours.filter((r) => theirs.get(r.assignment_id) === r.labels.label).length / ours.length;
      console.log(`exported rows of the fixed (Dawid-Skene) run: same label as crowd-kit on ${(same * 100).toFixed(1)} % of ${ours.length} items`);
      expect(same).toBeGreaterThanOrEqual(0.99);
    },
  );
});
