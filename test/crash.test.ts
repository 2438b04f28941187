/**
 * Crashes, on SQLite and on PostgreSQL: the worker process killed with SIGKILL while units are in
 * flight, and the Temporal dev server killed with SIGKILL and started again on its database file.
 * Each time the run completes, and its database state is identical to that of an uncrashed run of
 * the same inputs (compared as a normalized snapshot, see support/dbSnapshot.ts).
 *
 * The agents work one at a time, in a fixed order (support/scriptedAgents.ts), so the uncrashed and
 * the crashed runs write the same rows. A crash costs the time Temporal takes to notice it (the
 * sticky queue's and the in-flight tasks' timeouts), hence the long test timeouts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../model/database.ts';
import { connectOperator, type Operator } from '../operator/api.ts';
import { startDevServer, type DevServer } from '../toolchain/devServer.ts';
import { formConfig } from './support/configs.ts';
import { createTestDatabase } from './support/databases.ts';
import { dbSnapshot, type RunSnapshot } from './support/dbSnapshot.ts';
import { activeUnitCount } from './support/directAgents.ts';
import { recordRunHistories } from './support/histories.ts';
import { workInTurns } from './support/scriptedAgents.ts';
import { testSettings, type Dialect } from './support/stack.ts';
import { temporalCliPath } from './support/temporal.ts';
import { startWorkerProcess, type WorkerProcess } from './support/workerProcess.ts';

const UNITS = 4;
const CAP = 2;
const WORKERS = ['ann', 'bob'];
const CRASH_TEST_TIMEOUT_MS = 400_000;

describe.each<Dialect>(['sqlite', 'postgresql'])('crashes on %s', (dialect) => {
  let dataDir: string;
  let temporal: DevServer;
  let database: { url: string; drop(): Promise<void> };
  let db: Database;
  let operator: Operator;
  let worker: WorkerProcess | undefined;
  let settings: ReturnType<typeof testSettings>;
  /** The same inputs for every run of this file. */
  const config = formConfig({ max_num_concurrent_units: CAP, task_name: `crash-${dialect}` }, UNITS);
  let reference: RunSnapshot | undefined;

  const startWorker = async (): Promise<WorkerProcess> =>
    (worker = await startWorkerProcess({ temporalAddress: temporal.address, databaseUrl: database.url, taskQueue: settings.taskQueue }));

  const startTemporal = (port?: number, uiPort?: number): Promise<DevServer> =>
    startDevServer({ dataDir, port, uiPort, cliPath: temporalCliPath() });

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-crash-'));
    temporal = await startTemporal();
    database = await createTestDatabase(dialect);
    db = await openDatabase(database.url);
    settings = testSettings({ databaseUrl: database.url, temporalAddress: temporal.address });
    operator = await connectOperator(settings, { db });
    await startWorker();
  });

  afterAll(async () => {
    await worker?.stop();
    await operator?.close();
    await db?.close();
    await temporal?.stop();
    await database?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs the scripted agents to the end and returns the run's final snapshot. */
  async function completeRun(runId: string, hooks: Pick<Parameters<typeof workInTurns>[0], 'afterAssigned' | 'afterSubmitted'> = {}) {
    await workInTurns({ client: operator.client, db, runId, units: UNITS, cap: CAP, workers: WORKERS, ...hooks });
    const final = await operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('completed');
    expect(final.units.completed).toBe(UNITS);
    return dbSnapshot(db, runId);
  }

  async function referenceSnapshot(): Promise<RunSnapshot> {
    if (reference) return reference;
    const { runId } = await operator.launch(config);
    reference = await completeRun(runId);
    return reference;
  }

  it('an uncrashed run of the inputs completes (the reference state)', async () => {
    const snapshot = await referenceSnapshot();
    expect(snapshot.run).toMatchObject({ status: 'completed', assignmentCount: UNITS });
    expect(snapshot.units.map((u) => u.status)).toEqual(Array(UNITS).fill('completed'));
    expect(snapshot.submissions.map((s) => s.worker)).toEqual(
      Array.from({ length: UNITS }, (_, i) => `worker(mock:${WORKERS[i % WORKERS.length]})`),
    );
    // One launch and no expiry per unit, plus the run's setup.
    for (const u of snapshot.units) expect(snapshot.providerCalls[u.name as string]?.map((c) => c.operation)).toEqual(['launchUnit']);
  }, CRASH_TEST_TIMEOUT_MS);

  it('survives kill -9 of the worker process with units in flight: same final state as uncrashed', async () => {
    const expected = await referenceSnapshot();
    const crash = async (when: string): Promise<void> => {
      const victim = worker!;
      await victim.kill();
      expect((await victim.exited).signal, `worker killed ${when}`).toBe('SIGKILL');
      worker = undefined;
    };

    const { runId } = await operator.launch(config);
    const snapshot = await completeRun(runId, {
      afterAssigned: async (step) => {
        if (step !== 1) return;
        // In flight: one unit assigned to an agent, one launched and waiting for a worker.
        expect(await activeUnitCount(db, runId)).toBe(CAP);
        await crash('with an agent holding a unit');
      },
      afterSubmitted: async (step) => {
        if (step === 1) {
          // The submission reached Temporal while no worker ran; the new worker picks it up.
          await startWorker();
        }
        if (step === 2) {
          // Right after a submission: its activity (recording it) is likely running, or about to.
          await crash('right after a submission');
          await startWorker();
        }
      },
    });
    expect(snapshot).toEqual(expected);
    await recordRunHistories(operator.client, db, runId, 'worker-crash');
  }, CRASH_TEST_TIMEOUT_MS);

  it('survives kill -9 of the Temporal dev server, restarted on its database file: same final state', async () => {
    const expected = await referenceSnapshot();
    const { runId } = await operator.launch(config);
    const port = Number(temporal.address.split(':').pop());
    const uiPort = Number(new URL(temporal.uiUrl).port);
    const snapshot = await completeRun(runId, {
      afterAssigned: async (step) => {
        if (step !== 1) return;
        expect(await activeUnitCount(db, runId)).toBe(CAP);
        const killed = new Promise((resolve) => temporal.process.once('exit', resolve));
        temporal.process.kill('SIGKILL');
        await killed;
        temporal = await startTemporal(port, uiPort);
        expect(temporal.address).toBe(`127.0.0.1:${port}`);
      },
    });
    expect(snapshot).toEqual(expected);
    // The worker process lived through the outage: it reconnected by itself.
    expect(worker?.child.exitCode).toBeNull();
    await recordRunHistories(operator.client, db, runId, 'temporal-restart');
  }, CRASH_TEST_TIMEOUT_MS);
});
