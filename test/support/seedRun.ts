/**
 * A finished run with thousands of submitted units written straight into the database, as a run
 * that launched, handed out and stored every unit leaves it (the rows review, export and the API
 * read): the Task and TaskRun (`completed`, its validated config frozen), one assignment and one
 * unit per item (`completed`, launched at the mock provider), the workers, and one `completed`
 * agent per unit holding its submission. Batched inserts in one transaction: seconds, where running
 * the same units through the stack takes longer than a test may (docs/design.md §1 for the rows).
 * There is no TaskRunWorkflow behind it: what lists runs from Temporal (`hitloop runs`, the
 * console's runs page) does not show it; everything reading the database (status, review, export) does.
 */
import { randomUUID } from 'node:crypto';
import { validateRunConfig } from '../../config/validateRun.ts';
import type { Database } from '../../model/database.ts';
import { Agent, Assignment, Task, TaskRun, Unit, Worker } from '../../model/entities.ts';

/** Rows per insert statement: far below the bound-parameter limits of both dialects. */
const BATCH = 500;

export interface SeededRun {
  runId: string;
  unitIds: string[];
  workerIds: string[];
}

export interface SeedOptions {
  /** Submitted units, one per item (`config.data` must hold at least as many items). */
  units: number;
  /** Mock workers the units are shared among, round robin. */
  workers: number;
  /** The submission of unit `i`. */
  submission?: (i: number) => Record<string, unknown>;
}

async function insertInBatches<T>(rows: T[], insert: (batch: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) await insert(rows.slice(i, i + BATCH));
}

export async function seedFinishedRun(db: Database, rawConfig: Record<string, unknown>, opts: SeedOptions): Promise<SeededRun> {
  const config = validateRunConfig(rawConfig);
  if (!Array.isArray(config.data) || config.data.length < opts.units) throw new Error(`seedFinishedRun needs ${opts.units} inline data items`);
  const items = config.data as unknown[];
  const runId = `r-seed-${randomUUID().slice(0, 8)}`;
  const tag = runId.slice('r-seed-'.length);
  const now = new Date();
  const workers = Array.from({ length: opts.workers }, (_, i) => ({
    id: `w-${tag}-${i}`,
    provider: 'mock',
    providerWorkerId: `seed-${tag}-${i}`,
    blocked: false,
    createdAt: now,
  }));
  const assignments = Array.from({ length: opts.units }, (_, i) => ({
    id: `${runId}-a${i}`,
    taskRun: runId,
    index: i,
    data: items[i] as Record<string, unknown>,
    itemKey: null,
    createdAt: now,
  }));
  const units = assignments.map((a, i) => ({
    id: `${a.id}-u0`,
    assignment: a.id,
    taskRun: runId,
    unitIndex: 0,
    kind: 'normal' as const,
    status: 'completed' as const,
    pay: config.task_reward,
    providerUnitId: `mock-${a.id}-u0`,
    launchBatch: 1,
    worker: workers[i % opts.workers]!.id,
    createdAt: now,
    launchedAt: now,
    assignedAt: now,
    completedAt: now,
  }));
  const agents = units.map((u, i) => ({
    id: `ag-${tag}-${i}`,
    unit: u.id,
    assignment: u.assignment,
    taskRun: runId,
    worker: u.worker,
    status: 'completed' as const,
    registrationKey: `seed-${i}`,
    initData: null,
    state: null,
    submission: opts.submission?.(i) ?? { label: i % 2 ? 'positive' : 'negative' },
    submitKey: `seed-submit-${i}`,
    createdAt: now,
    startedAt: now,
    submittedAt: now,
    liveBytes: 0,
  }));
  await db.em().transactional(async (em) => {
    let task = await em.findOne(Task, { name: config.task_name });
    if (!task) {
      task = em.create(Task, { id: `task-${randomUUID()}`, name: config.task_name });
      await em.flush();
    }
    await em.insert(TaskRun, {
      id: runId,
      task: task.id,
      status: 'completed',
      workflowId: `taskrun-${runId}`,
      config: config as unknown as Record<string, unknown>,
      providerType: config.provider.type,
      blueprintType: config.blueprint.type,
      reward: config.task_reward,
      maxSpend: config.max_spend ?? null,
      endReason: 'completed',
      assignmentCount: opts.units,
      createdAt: now,
      endedAt: now,
    });
    await insertInBatches(workers, (batch) => em.insertMany(Worker, batch));
    await insertInBatches(assignments, (batch) => em.insertMany(Assignment, batch));
    await insertInBatches(units, (batch) => em.insertMany(Unit, batch));
    await insertInBatches(agents, (batch) => em.insertMany(Agent, batch));
  });
  return { runId, unitIds: units.map((u) => u.id), workerIds: workers.map((w) => w.id) };
}
