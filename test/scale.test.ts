/**
 * Scale, on SQLite only (the embedded default; the PostgreSQL path runs the same activities): a
 * run of 100,000 assignments from a generated JSONL file, with max_num_concurrent_units 1,000.
 * The worker runs as its own process so its memory can be read from /proc while it creates the
 * assignments (streamed, in batches) and launches the first 1,000 units. The test prints the
 * memory and time of each phase and the longest history of any workflow of the run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Assignment, ProviderCall, Unit } from '../model/entities.ts';
import { runStatusQuery, taskRunWorkflowId } from '../workflows/definitions.ts';
import { formConfig } from './support/configs.ts';
import { fetchAllRuns } from './support/histories.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';
import { startWorkerProcess, type WorkerProcess } from './support/workerProcess.ts';

const ASSIGNMENTS = 100_000;
const CAP = 1_000;
const MAX_HISTORY_EVENTS = 10_000;
/**
 * Memory bounds of the worker process. Its baseline (Node, the Temporal core, the workflow bundle's
 * isolate, the ORM) is ~250 MB. Measured while creating the assignments, its peak grows by ~50 MB
 * for 20,000 assignments, ~130 MB for 100,000 and ~190 MB for 300,000: far from proportional to the
 * data, i.e. garbage not yet collected rather than assignments held at once. Shutdown loads every unit left to expire
 * as ORM entities at once (activities/taskRunActivities.ts expireUnits), 1.4-2 KB a unit: ~130 MB
 * more here, and it grows with the run (~630 MB more for 300,000 units).
 */
const MAX_GROWTH_WHILE_CREATING_BYTES = 256 * 1024 * 1024;
const MAX_WORKER_RSS_BYTES = 768 * 1024 * 1024;
const SCALE_TIMEOUT_MS = 15 * 60_000;

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Samples the worker's resident memory until stopped; keeps the peak and the samples per phase. */
function memorySampler(worker: WorkerProcess) {
  let phase = 'start';
  const peaks = new Map<string, number>();
  const sample = (): void => {
    try {
      const { rss } = worker.memory();
      peaks.set(phase, Math.max(peaks.get(phase) ?? 0, rss));
    } catch {
      // the process is exiting
    }
  };
  sample();
  const timer = setInterval(sample, 200);
  return {
    enter(next: string) {
      sample();
      phase = next;
      sample();
    },
    stop() {
      clearInterval(timer);
      sample();
      return { peaks, peakRss: worker.memory().peakRss };
    },
  };
}

describe('a run of 100,000 assignments (SQLite)', () => {
  let stack: Stack;
  let worker: WorkerProcess;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-scale-'));
    stack = await startStack('sqlite', { worker: false });
    worker = await startWorkerProcess({
      temporalAddress: stack.env.address,
      databaseUrl: stack.settings.databaseUrl,
      taskQueue: stack.settings.taskQueue,
    });
  });

  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates every assignment and unit, launches 1,000, with bounded worker memory and short histories', async () => {
    const { operator, db, env } = stack;
    const file = path.join(dataDir, 'items.jsonl');
    const lines: string[] = [];
    for (let i = 0; i < ASSIGNMENTS; i++) lines.push(JSON.stringify({ text: `sentence number ${i}`, i }));
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    console.log(`scale: data file ${mb(fs.statSync(file).size)} with ${ASSIGNMENTS} assignments`);

    const memory = memorySampler(worker);
    const t0 = Date.now();
    memory.enter('creating assignments');
    const { runId } = await operator.launch(formConfig({ max_num_concurrent_units: CAP, data: file }, 0));
    const assignments = (): Promise<number> => db.em().count(Assignment, { taskRun: runId });
    const units = (status?: 'created' | 'launched'): Promise<number> => db.em().count(Unit, { taskRun: runId, ...(status ? { status } : {}) });

    await eventually(
      async () => ((await assignments()) === ASSIGNMENTS ? true : undefined),
      `${ASSIGNMENTS} assignments of run ${runId}`,
      SCALE_TIMEOUT_MS,
    );
    const tCreated = Date.now();
    memory.enter('launching units');
    await eventually(async () => ((await units('launched')) === CAP ? true : undefined), `${CAP} launched units`, SCALE_TIMEOUT_MS);
    const tLaunched = Date.now();
    memory.enter('running');

    expect(await assignments()).toBe(ASSIGNMENTS);
    expect(await units()).toBe(ASSIGNMENTS);
    expect(await units('created')).toBe(ASSIGNMENTS - CAP);
    expect(await units('launched')).toBe(CAP);
    // The run holds at the cap: nothing more is launched while no unit frees a slot.
    const handle = env.client.workflow.getHandle(taskRunWorkflowId(runId));
    const view = await handle.query(runStatusQuery);
    expect(view).toMatchObject({ status: 'running', totalUnits: ASSIGNMENTS });
    expect(view.units).toMatchObject({ created: ASSIGNMENTS - CAP, launched: CAP });
    expect(await db.em().count(ProviderCall, { operation: 'launchUnit', target: { $like: `${runId}-%` } })).toBe(CAP);

    memory.enter('shutting down');
    const shut = await operator.shutdown(runId);
    const tShut = Date.now();
    expect(shut.status).toBe('cancelled');
    expect(shut.units.expired).toBe(ASSIGNMENTS);
    const { peaks, peakRss } = memory.stop();

    const runs = await fetchAllRuns(env.client, taskRunWorkflowId(runId));
    const lengths = runs.map((r) => r.history.events?.length ?? 0);
    const longest = Math.max(...lengths);
    console.log(
      [
        `scale: ${ASSIGNMENTS} assignments created in ${seconds(tCreated - t0)}, ${CAP} units launched ${seconds(tLaunched - tCreated)} later, shut down in ${seconds(tShut - tLaunched)}`,
        `scale: worker RSS peak per phase: ${[...peaks].map(([phase, rss]) => `${phase} ${mb(rss)}`).join(', ')}; process peak (VmHWM) ${mb(peakRss)}`,
        `scale: TaskRun workflow runs: ${runs.length} (continue-as-new ${runs.length - 1} times); history lengths ${lengths.join(', ')}; largest history of any workflow of the run: ${longest} events`,
      ].join('\n'),
    );
    // No assignment workflow exists: no worker took a unit. The TaskRun workflow's histories are all there is.
    expect(longest).toBeLessThan(MAX_HISTORY_EVENTS);
    expect(peaks.get('creating assignments')! - peaks.get('start')!).toBeLessThan(MAX_GROWTH_WHILE_CREATING_BYTES);
    expect(peakRss).toBeLessThan(MAX_WORKER_RSS_BYTES);
  }, SCALE_TIMEOUT_MS);
});
