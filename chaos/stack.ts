/**
 * A hitloop deployment made of real processes, for the chaos harness and the benchmarks: a Temporal
 * dev server on a SQLite file (or `temporal: 'cluster'`: the production cluster), a scratch database (PostgreSQL or SQLite), hitloop worker processes
 * (`node workers/main.ts`) and gateway processes (`node gateway/main.ts`, as `hitloop gateway`), each of which can be
 * killed with SIGKILL and started again. The harness itself holds a Temporal client and the database.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import type { Settings } from '../config/settings.ts';
import { openDatabase, type Database, type Dialect } from '../model/database.ts';
import { createScratchDatabase, DEFAULT_SCRATCH_POSTGRES_URL } from '../model/scratchDatabase.ts';
import { connectOperator, type Operator } from '../operator/api.ts';
import { freePort } from '../toolchain/ports.ts';
import { ensureWorkflowBundle } from '../workers/workflowBundle.ts';
import { ManagedProcess, track } from './managedProcess.ts';
import { TemporalClusterServer } from './temporalClusterServer.ts';
import { RestartableTemporal } from './temporalServer.ts';

/** The dev server (default), or the production cluster (four services on PostgreSQL) of `hitloop stack`. */
export type StackTemporal = RestartableTemporal | TemporalClusterServer;
export type StackTemporalKind = 'dev' | 'cluster';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface StackOptions {
  /** Where logs, the Temporal database and profiles go; kept after the run for inspection. */
  workDir: string;
  dialect?: Dialect;
  /** Extra Node flags for worker processes (e.g. `--cpu-prof`). */
  workerNodeArgs?: string[];
  gatewayNodeArgs?: string[];
  /** Environment added to worker processes. */
  workerEnv?: NodeJS.ProcessEnv;
  gatewayEnv?: NodeJS.ProcessEnv;
  /** HITLOOP_LOG_LEVEL of the children (default info). */
  logLevel?: string;
  /** Which Temporal: the dev server on a SQLite file (default) or the production cluster on PostgreSQL. */
  temporal?: StackTemporalKind;
}

export interface Stack {
  workDir: string;
  temporal: StackTemporal;
  db: Database;
  databaseUrl: string;
  dialect: Dialect;
  client: Client;
  operator: Operator;
  settings: Settings;
  workers: ManagedProcess[];
  gateways: ManagedProcess[];
  /** A new worker process (started). */
  addWorker(): Promise<ManagedProcess>;
  /** A new gateway process on a port of its own (started); its URL is `gatewayUrl(g)`. */
  addGateway(): Promise<ManagedProcess>;
  gatewayUrl(gateway: ManagedProcess): string;
  /** Stops everything and removes the scratch database (the work directory stays). */
  stop(): Promise<void>;
}

/** Node 24 runs hitloop's processes: this one if it is 24, else the copy scripts/env.sh installs. */
export function nodeBinary(): string {
  if (process.versions.node.startsWith('24.')) return process.execPath;
  return path.join(process.env.HOME ?? '/root', '.cache', 'hitloop', 'node24', 'node_modules', '.bin', 'node');
}

/** Whether the worker process `pid` polls the task queue for workflow tasks (its SDK identity is `<pid>@<host>`). */
export async function isPolling(client: Client, taskQueue: string, pid: number | undefined, namespace = 'default'): Promise<boolean> {
  if (pid === undefined) return false;
  const answer = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
  });
  return (answer.pollers ?? []).some((p) => p.identity?.startsWith(`${pid}@`));
}

export function scratchPostgresServerUrl(): string {
  return process.env.HITLOOP_TEST_POSTGRES_URL || DEFAULT_SCRATCH_POSTGRES_URL;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const workDir = path.resolve(opts.workDir);
  fs.mkdirSync(workDir, { recursive: true });
  const dialect = opts.dialect ?? 'postgresql';
  // Built here, once, so that no worker process spends its start-up timeout bundling (a minute on two cores).
  await ensureWorkflowBundle();
  const temporal: StackTemporal =
    opts.temporal === 'cluster'
      ? new TemporalClusterServer({ stateDir: path.join(workDir, 'temporal-cluster'), postgresUrl: scratchPostgresServerUrl() })
      : new RestartableTemporal(path.join(workDir, 'temporal'), path.join(workDir, 'temporal.log'));
  await temporal.start().catch(async (err: unknown) => {
    await temporal.stop().catch(() => undefined);
    throw err;
  });
  const scratch = await createScratchDatabase(dialect, { prefix: dialect === 'postgresql' ? 'hitloop_bench_' : 'hitloop-bench-', postgresUrl: scratchPostgresServerUrl() });
  const db = await openDatabase(scratch.url);
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  const taskQueue = `hitloop-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(16).toString('hex');
  const logLevel = opts.logLevel ?? 'info';
  const settings: Settings = {
    dataDir: workDir,
    databaseUrl: scratch.url,
    temporalAddress: temporal.address,
    temporalNamespace: 'default',
    taskQueue,
    secret,
    gatewayPort: 0,
    gatewayUrl: 'http://127.0.0.1:0',
    logLevel,
  };
  const operator = await connectOperator(settings, { client, db });
  const baseEnv = (): NodeJS.ProcessEnv => ({
    ...process.env,
    TEMPORAL_ADDRESS: temporal.address,
    HITLOOP_DATABASE_URL: scratch.url,
    HITLOOP_TASK_QUEUE: taskQueue,
    HITLOOP_SECRET: secret,
    HITLOOP_DATA_DIR: workDir,
    HITLOOP_LOG_LEVEL: logLevel,
  });
  const gatewayPorts = new Map<ManagedProcess, number>();
  const workers: ManagedProcess[] = [];
  const gateways: ManagedProcess[] = [];

  const stack: Stack = {
    workDir,
    temporal,
    db,
    databaseUrl: scratch.url,
    dialect,
    client,
    operator,
    settings,
    workers,
    gateways,
    async addWorker() {
      const name = `worker-${workers.length + 1}`;
      const worker: ManagedProcess = track(
        new ManagedProcess({
          name,
          command: nodeBinary(),
          args: [...(opts.workerNodeArgs ?? []), path.join(REPO_ROOT, 'workers', 'main.ts')],
          env: { ...baseEnv(), ...opts.workerEnv },
          logFile: path.join(workDir, `${name}.log`),
          // Ready once Temporal sees this process poll its task queue (whatever the log level).
          readyProbe: () => isPolling(client, taskQueue, worker.pid),
          readyTimeoutMs: 120_000,
        }),
      );
      workers.push(worker);
      await worker.start();
      return worker;
    },
    async addGateway() {
      const name = `gateway-${gateways.length + 1}`;
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const gateway = track(
        new ManagedProcess({
          name,
          command: nodeBinary(),
          // gateway/main.ts is what `hitloop gateway` runs; the port comes from HITLOOP_GATEWAY_PORT.
          args: [...(opts.gatewayNodeArgs ?? []), path.join(REPO_ROOT, 'gateway', 'main.ts')],
          env: { ...baseEnv(), HITLOOP_GATEWAY_PORT: String(port), HITLOOP_GATEWAY_URL: url, ...opts.gatewayEnv },
          logFile: path.join(workDir, `${name}.log`),
          readyProbe: async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok,
          readyTimeoutMs: 120_000,
        }),
      );
      gatewayPorts.set(gateway, port);
      gateways.push(gateway);
      await gateway.start();
      return gateway;
    },
    gatewayUrl(gateway) {
      const port = gatewayPorts.get(gateway);
      if (port === undefined) throw new Error(`${gateway.spec.name} is not a gateway of this stack`);
      return `http://127.0.0.1:${port}`;
    },
    async stop() {
      await Promise.all([...gateways, ...workers].map((p) => p.stop(20_000)));
      await operator.close();
      await connection.close();
      await db.close();
      await temporal.stop();
      await scratch.drop();
    },
  };
  return stack;
}
