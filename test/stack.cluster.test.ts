/**
 * The production shape under faults: `hitloop stack`'s real Temporal cluster (four service processes
 * on PostgreSQL), two hitloop workers and two gateways behind HAProxy, simulated crowd workers
 * speaking the protocol over wss:// through the proxy. Each Temporal service, a worker and a gateway
 * are killed with SIGKILL and started again, then every process is restarted one at a time; every
 * invariant of chaos/invariants.ts must hold. The gateways' /metrics counters must move meanwhile,
 * and a whole-stack restart on the same state must find the run again.
 *
 * The first run builds the Temporal server, SQL tool and UI server into ~/.cache/hitloop (minutes).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CHAOS_OPTIONS, chaosConfig } from '../chaos/harness.ts';
import { checkInvariants } from '../chaos/invariants.ts';
import { Ledger } from '../chaos/ledger.ts';
import type { ManagedProcess } from '../chaos/managedProcess.ts';
import { SeededRandom, newSeed } from '../chaos/random.ts';
import { runSimulatedWorker } from '../chaos/simulatedWorker.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { TaskRun, Unit } from '../model/entities.ts';
import { isFinalTaskRunStatus } from '../model/status.ts';
import { connectOperator, type Operator } from '../operator/api.ts';
import { type ProductionStack, startProductionStack } from '../stack/productionStack.ts';
import { taskRunWorkflowId } from '../workflows/definitions.ts';
import { checkJsonLog } from './support/jsonLogs.ts';

const ASSIGNMENTS = 24;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sum of a counter's samples in Prometheus text (all label sets), or 0 when absent. */
export function counterSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function scrape(urls: Iterable<string>): Promise<string> {
  const bodies = await Promise.all([...urls].map(async (url) => (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text()));
  return bodies.join('\n');
}

describe('production stack: Temporal cluster on PostgreSQL (split services), workers and gateways behind HAProxy over TLS', () => {
  const postgresUrl = inject('postgresUrl');
  const prefix = `hitloop_stack_${randomBytes(3).toString('hex')}_`;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-stack-'));
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(`${new Date().toISOString()} ${line}`);
  };
  let stack: ProductionStack;
  let db: Database;
  let connection: Connection;
  let client: Client;
  let operator: Operator;

  const startStack = () =>
    startProductionStack({
      stateDir,
      postgresUrl,
      databasePrefix: prefix,
      services: 'split',
      workers: 2,
      gateways: 2,
      httpsPort: 0,
      temporalPort: 0,
      uiPort: 0,
      log,
    });

  beforeAll(async () => {
    const started = Date.now();
    stack = await startStack();
    log(`stack up in ${Math.round((Date.now() - started) / 1000)} s`);
    // The simulated workers run in this process: trust the stack's self-signed certificate here.
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), fs.readFileSync(stack.certificateFile, 'utf8')]);
    db = await openDatabase(stack.databaseUrl);
    connection = await Connection.connect({ address: stack.temporalAddress });
    client = new Client({ connection, namespace: stack.namespace });
    operator = await connectOperator(stack.settings, { client, db });
  }, 40 * 60_000);

  afterAll(async () => {
    await operator?.close();
    await connection?.close();
    await db?.close();
    await stack?.stop();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    for (const name of ['temporal', 'temporal_visibility', 'hitloop']) await admin.query(`drop database if exists "${prefix}${name}" with (force)`).catch(() => undefined);
    await admin.end();
    if (process.env.HITLOOP_KEEP_STACK_LOG) console.log(lines.join('\n'));
  }, 180_000);

  it('serves task pages over https, the gateways answer /readyz through the proxy, the Web UI answers', { timeout: 60_000 }, async () => {
    expect(stack.temporal.map((p) => p.spec.name)).toEqual(['temporal-frontend', 'temporal-history', 'temporal-matching', 'temporal-worker']);
    expect(stack.httpsUrl).toMatch(/^https:\/\/localhost:\d+$/);
    const ready = await fetch(`${stack.httpsUrl}/readyz`);
    expect(ready.status).toBe(200);
    const page = await fetch(`${stack.httpsUrl}/task/no-such-run`);
    expect(page.status).toBe(404);
    const ui = await fetch(stack.uiUrl!);
    expect(ui.status).toBe(200);
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: stack.namespace });
    expect(Object.keys(customAttributes ?? {})).toEqual(expect.arrayContaining(['HitloopTaskName', 'HitloopRunId', 'HitloopRunStatus']));
  });

  it(
    'completes a run over wss:// while each Temporal service, a worker and a gateway are killed, then every process restarts in turn',
    { timeout: 40 * 60_000 },
    async () => {
      const seed = Number(process.env.HITLOOP_CHAOS_SEED) || newSeed();
      const options = { ...DEFAULT_CHAOS_OPTIONS, seed, assignments: ASSIGNMENTS, workers: 5, reconnectWindowSeconds: 20 };
      const { runId } = await operator.launch(chaosConfig(options), { workflowOptions: { updateLimit: options.updateLimit } });
      log(`run ${runId} launched (seed ${seed})`);

      const ledger = new Ledger();
      let runEnded = false;
      // The simulated workers turn https:// into wss://<host>/ws themselves.
      const wss = stack.httpsUrl;
      const rng = new SeededRandom(seed);
      const crowd = Array.from({ length: options.workers }, (_, i) =>
        runSimulatedWorker(
          `cluster-${i + 1}`,
          { runId, gatewayUrls: [wss], ledger, gate: async () => {}, stopped: () => runEnded },
          rng.fork(),
          { dropper: i % 3 === 0, abandonRate: 0.03, thinkMs: [200, 1500], maxLiveActions: 2 },
        ).catch((err: unknown) => ledger.anomaly(`cluster-${i + 1} crashed: ${(err as Error).stack ?? String(err)}`)),
      );
      const completed = () => db.em().count(Unit, { taskRun: runId, status: 'completed' });
      const waitForCompleted = async (n: number): Promise<void> => {
        while ((await completed()) < n) await sleep(250);
      };

      // Metrics while the run is live: the gateways count registrations, the workers report its units.
      await waitForCompleted(1);
      const gatewayUrls = stack.gateways.map((g) => stack.metricsUrls.get(g.spec.name)!);
      const registrationsAtStart = counterSum(await scrape(gatewayUrls), 'hitloop_registrations_total');
      expect(registrationsAtStart).toBeGreaterThan(0);
      const unitsCompleted = async (): Promise<number> => {
        const text = await scrape([stack.metricsUrls.get('worker-2')!]);
        const line = text.split('\n').find((l) => l.startsWith('hitloop_units{') && l.includes(`run_id="${runId}"`) && l.includes('status="completed"'));
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
      };
      const completedAtStart = await unitsCompleted();
      expect(completedAtStart).toBeGreaterThan(0);
      const sdkMetrics = await scrape([stack.sdkMetricsUrls.get('worker-1')!]);
      expect(sdkMetrics).toMatch(/^temporal_\w+/m);
      const gateway2At = async (): Promise<number> => counterSum(await scrape([stack.metricsUrls.get('gateway-2')!]), 'hitloop_registrations_total');
      const gateway2Before = await gateway2At();

      // Faults, spread over the run: each Temporal service, a worker, a gateway; each back after 2 s.
      const faults: Array<{ name: string; atCompleted: number; backAfterMs: number }> = [];
      const targets: ManagedProcess[] = [...stack.temporal, stack.workers[0]!, stack.gateways[0]!];
      let completedAfterFirstFault = 0;
      for (const [i, target] of targets.entries()) {
        // Over the first two thirds of the run, so every fault strikes while work is in flight.
        // (The first after one more completion than the metrics saw, so the gauge must have moved.)
        const at = Math.max(1 + Math.floor(((i + 1) * ((ASSIGNMENTS * 2) / 3)) / targets.length), i === 0 ? completedAtStart + 1 : 0);
        await waitForCompleted(at);
        const killedAt = Date.now();
        await target.kill9();
        await sleep(2000);
        await target.start();
        faults.push({ name: target.spec.name, atCompleted: at, backAfterMs: Date.now() - killedAt });
        // The units gauge reads the database while the run is live: it follows the completions.
        if (i === 0) completedAfterFirstFault = await unitsCompleted();
        log(`killed and restarted ${target.spec.name} at ${at} completed (${Date.now() - killedAt} ms)`);
      }
      // gateway-2 and worker-2 were not restarted yet: their figures only grow.
      const gateway2After = await gateway2At();
      log(
        `metrics: registrations ${registrationsAtStart} at the first completion, gateway-2 ${gateway2Before} -> ${gateway2After}; completed units ${completedAtStart} -> ${completedAfterFirstFault}`,
      );
      expect(gateway2After).toBeGreaterThanOrEqual(gateway2Before);
      expect(completedAfterFirstFault).toBeGreaterThan(completedAtStart);

      // Rolling restart: every process, one at a time, gracefully.
      for (const p of stack.processes()) {
        await p.stop(25_000);
        await p.start();
        log(`rolling restart: ${p.spec.name} back`);
      }

      const deadline = Date.now() + 20 * 60_000;
      for (;;) {
        const row = await db.em().findOne(TaskRun, runId, { fields: ['status'] });
        if (row && isFinalTaskRunStatus(row.status)) break;
        if (Date.now() > deadline) throw new Error(`the run did not end in time; ${await completed()} of ${ASSIGNMENTS} completed\n${lines.join('\n')}`);
        await sleep(500);
      }
      runEnded = true;
      await Promise.race([Promise.all(crowd), sleep(15_000)]);
      await client.workflow.getHandle(taskRunWorkflowId(runId)).result();

      const invariants = await checkInvariants({ db, client, runId, ledger, units: ASSIGNMENTS, checkDeliveries: true });
      const failed = invariants.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}; ${i.violations.join('; ')}`);
      if (failed.length > 0 || ledger.anomalies.length > 0) console.error(`${lines.join('\n')}\nseed ${seed}`);
      log(`faults: ${faults.map((f) => `${f.name}@${f.atCompleted}`).join(', ')}; invariants: ${invariants.map((i) => `${i.name} ${i.ok ? 'ok' : 'FAILED'}`).join('; ')}`);
      console.log(`cluster chaos (seed ${seed}): ${faults.length} kills + rolling restart of ${stack.processes().length} processes; ${ledger.acked.length} acknowledged submissions`);
      for (const i of invariants) console.log(`  ${i.ok ? 'ok ' : 'FAIL'} ${i.name}: ${i.detail}`);
      expect(faults.map((f) => f.name)).toEqual(['temporal-frontend', 'temporal-history', 'temporal-matching', 'temporal-worker', 'worker-1', 'gateway-1']);
      expect(failed).toEqual([]);
      expect(ledger.anomalies).toEqual([]);
      expect(ledger.acked.length).toBeGreaterThan(0);
    },
  );

  it('its workers and gateways logged nothing but JSON records, through every kill and restart', () => {
    for (const p of [...stack.workers, ...stack.gateways]) {
      const check = checkJsonLog(p.spec.logFile);
      expect(check.others, p.spec.name).toEqual([]);
      expect(check.records, `${p.spec.name}: records`).toBeGreaterThan(0);
    }
  });

  it('resumes on restart: a new start on the same state directory finds the cluster, the namespace and the run', { timeout: 10 * 60_000 }, async () => {
    const runs = await operator.runs();
    expect(runs.length).toBeGreaterThan(0);
    const runId = runs[0]!.runId;
    await operator.close();
    await connection.close();
    await stack.stop();
    const restarted = Date.now();
    stack = await startStack();
    log(`warm restart in ${Math.round((Date.now() - restarted) / 1000)} s`);
    connection = await Connection.connect({ address: stack.temporalAddress });
    client = new Client({ connection, namespace: stack.namespace });
    operator = await connectOperator(stack.settings, { client, db });
    const status = await operator.status(runId);
    expect(status.status).toBe('completed');
    const described = await client.workflow.getHandle(taskRunWorkflowId(runId)).describe();
    expect(described.status.name).toBe('COMPLETED');
  });
});
