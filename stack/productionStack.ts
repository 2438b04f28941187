/**
 * The production shape of hitloop on one machine, with no container engine: a real Temporal cluster
 * on PostgreSQL (one process or four), its Web UI, N hitloop workers and M gateways, and HAProxy
 * terminating TLS in front of the gateways. Every part is a child process that can be killed and
 * started again; all state (Temporal's, hitloop's) is in PostgreSQL and the state directory, so a new
 * start on the same state directory resumes every run.
 *
 *   const stack = await startProductionStack({ stateDir, postgresUrl, services: 'split', workers: 2, gateways: 2, httpsPort: 8443 });
 *   stack.httpsUrl    // https://localhost:8443 (task pages; wss://localhost:8443/ws)
 *   await stack.stop();
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import YAML from 'yaml';
import { ManagedProcess } from '../chaos/managedProcess.ts';
import { REPO_ROOT, isPolling, nodeBinary } from '../chaos/stack.ts';
import type { Settings } from '../config/settings.ts';
import { redactDatabaseUrl } from '../model/databaseUrl.ts';
import { ensureTemporalServerBinaries, type TemporalServerBinaries } from '../toolchain/temporalServer.ts';
import { acceptsConnections } from '../toolchain/ports.ts';
import { ensureWorkflowBundle } from '../workers/workflowBundle.ts';
import { prepareProxy } from './proxy.ts';
import {
  type ServicesMode,
  freeLowPorts,
  postgresTargetFromUrl,
  prepareTemporalCluster,
  registerNamespace,
  setUpSchemas,
} from './temporalCluster.ts';

export interface ProductionStackOptions {
  /** Config, certificate, secret, ports and logs; the same directory on the next start resumes. */
  stateDir: string;
  /** A PostgreSQL server whose role may create databases (any database on it). */
  postgresUrl: string;
  /** Names of the three databases: `<prefix>temporal`, `<prefix>temporal_visibility`, `<prefix>hitloop`. */
  databasePrefix?: string;
  services?: ServicesMode;
  workers?: number;
  gateways?: number;
  /** The proxy's HTTPS port (0: a free one, kept for the next start). */
  httpsPort?: number;
  /** Temporal frontend gRPC port (0: a free one below 32768, kept). */
  temporalPort?: number;
  /** Web UI port (0: a free one, kept); false: no UI. */
  uiPort?: number | false;
  namespace?: string;
  taskQueue?: string;
  logLevel?: string;
  /** Extra environment for workers and gateways (OTEL_EXPORTER_OTLP_ENDPOINT, ...). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface ProductionStack {
  stateDir: string;
  temporalAddress: string;
  namespace: string;
  httpsUrl: string;
  uiUrl: string | undefined;
  /** The self-signed certificate clients must trust. */
  certificateFile: string;
  databaseUrl: string;
  /** What a hitloop process (or the operator API) needs to reach this stack. */
  settings: Settings;
  temporal: ManagedProcess[];
  workers: ManagedProcess[];
  gateways: ManagedProcess[];
  proxy: ManagedProcess;
  ui: ManagedProcess | undefined;
  /** http://127.0.0.1:<port>/metrics of every worker and gateway (hitloop's metrics), by process name. */
  metricsUrls: Map<string, string>;
  /** The Temporal SDK's metrics of every worker, by process name. */
  sdkMetricsUrls: Map<string, string>;
  /** Every process, in start order. */
  processes(): ManagedProcess[];
  /** Graceful stop of everything, in reverse start order. */
  stop(): Promise<void>;
}

interface SavedState {
  secret: string;
  ports: Record<string, number>;
}

function loadState(stateDir: string): SavedState {
  const file = path.join(stateDir, 'stack.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as SavedState;
  return { secret: randomBytes(24).toString('hex'), ports: {} };
}

function saveState(stateDir: string, state: SavedState): void {
  fs.writeFileSync(path.join(stateDir, 'stack.json'), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** Creates the database if missing (duplicate_database is not an error: it is the restart case). */
async function ensureDatabase(serverUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name '${name}': use [a-z0-9_] only (check --database-prefix)`);
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect().catch((err: unknown) => {
    throw new Error(`cannot reach PostgreSQL at ${redactDatabaseUrl(serverUrl)}: ${(err as Error).message}; start it or pass --postgres`, {
      cause: err,
    });
  });
  try {
    await client.query(`create database "${name}"`).catch((err: { code?: string }) => {
      if (err.code !== '42P04') throw err;
    });
  } finally {
    await client.end();
  }
}

export async function startProductionStack(opts: ProductionStackOptions): Promise<ProductionStack> {
  const log = opts.log ?? (() => {});
  const stateDir = path.resolve(opts.stateDir);
  fs.mkdirSync(path.join(stateDir, 'logs'), { recursive: true });
  const state = loadState(stateDir);
  const workerCount = opts.workers ?? 2;
  const gatewayCount = opts.gateways ?? 2;
  const namespace = opts.namespace ?? 'default';
  const prefix = opts.databasePrefix ?? '';
  const logLevel = opts.logLevel ?? 'info';

  const started = Date.now();
  const binaries: TemporalServerBinaries = await ensureTemporalServerBinaries({ log, ui: opts.uiPort !== false });
  await ensureWorkflowBundle();

  const pgTarget = postgresTargetFromUrl(opts.postgresUrl);
  const databases = { store: `${prefix}temporal`, visibility: `${prefix}temporal_visibility` };
  await setUpSchemas(binaries, pgTarget, databases, log);
  await ensureDatabase(opts.postgresUrl, `${prefix}hitloop`);
  const databaseUrl = (() => {
    const url = new URL(opts.postgresUrl);
    url.pathname = `/${prefix}hitloop`;
    return url.toString();
  })();

  // Ports: given ones win, else those of the last start, else free ones (kept for the next start).
  const port = async (key: string, given: number | undefined): Promise<number> => {
    if (given) return (state.ports[key] = given);
    state.ports[key] ??= await freeLowPorts(1);
    return state.ports[key];
  };
  const temporalPort = await port('temporal', opts.temporalPort);
  const cluster = await prepareTemporalCluster({
    binaries,
    stateDir,
    postgres: pgTarget,
    databases,
    mode: opts.services ?? 'single',
    ports: { frontend: temporalPort },
    logLevel: 'warn',
  });
  const httpsPort = await port('https', opts.httpsPort);
  const gatewayPorts: number[] = [];
  for (let i = 1; i <= gatewayCount; i++) gatewayPorts.push(await port(`gateway-${i}`, undefined));
  const workerMetricsPorts: number[] = [];
  const sdkMetricsPorts: number[] = [];
  for (let i = 1; i <= workerCount; i++) {
    workerMetricsPorts.push(await port(`worker-${i}-metrics`, undefined));
    sdkMetricsPorts.push(await port(`worker-${i}-sdk-metrics`, undefined));
  }
  const uiPort = opts.uiPort === false ? undefined : await port('ui', opts.uiPort || undefined);
  saveState(stateDir, state);

  const proxy = await prepareProxy({ stateDir, port: httpsPort, gatewayPorts }, log);
  const settings: Settings = {
    dataDir: stateDir,
    databaseUrl,
    temporalAddress: cluster.address,
    temporalNamespace: namespace,
    taskQueue: opts.taskQueue ?? 'hitloop',
    secret: state.secret,
    gatewayPort: gatewayPorts[0]!,
    gatewayUrl: proxy.url,
    logLevel,
  };
  const hitloopEnv: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: settings.temporalAddress,
    TEMPORAL_NAMESPACE: namespace,
    HITLOOP_DATABASE_URL: databaseUrl,
    HITLOOP_TASK_QUEUE: settings.taskQueue,
    HITLOOP_SECRET: settings.secret,
    HITLOOP_DATA_DIR: stateDir,
    HITLOOP_LOG_LEVEL: logLevel,
    HITLOOP_GATEWAY_URL: proxy.url,
    ...opts.env,
  };

  const processes: ManagedProcess[] = [];
  // Kept open for the stack's life: worker readiness (after any restart) asks Temporal who polls.
  let connection: Connection | undefined;
  const stopAll = async (): Promise<void> => {
    for (const p of [...processes].reverse()) await p.stop(25_000);
    await connection?.close();
  };
  try {
    log(
      `Temporal: ${cluster.mode === 'single' ? 'one process' : 'frontend, history, matching and worker as four processes'} on ${cluster.address}`,
    );
    for (const p of cluster.processes) {
      processes.push(p);
      await p.start();
    }
    await registerNamespace(cluster.address, namespace, { log });

    let ui: ManagedProcess | undefined;
    if (uiPort !== undefined) {
      ui = uiServerProcess(binaries, stateDir, cluster.address, uiPort, namespace);
      processes.push(ui);
      await ui.start();
    }

    connection = await Connection.connect({ address: cluster.address });
    const client = new Client({ connection, namespace });
    const metricsUrls = new Map<string, string>();
    const sdkMetricsUrls = new Map<string, string>();
    const workers: ManagedProcess[] = [];
    for (let i = 1; i <= workerCount; i++) {
      const name = `worker-${i}`;
      const worker: ManagedProcess = new ManagedProcess({
        name,
        command: nodeBinary(),
        args: [path.join(REPO_ROOT, 'workers', 'main.ts')],
        env: {
          ...hitloopEnv,
          HITLOOP_METRICS_PORT: String(workerMetricsPorts[i - 1]),
          HITLOOP_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkMetricsPorts[i - 1]}`,
        },
        logFile: path.join(stateDir, 'logs', `${name}.log`),
        readyProbe: () => isPolling(client, settings.taskQueue, worker.pid, namespace),
        readyTimeoutMs: 180_000,
      });
      metricsUrls.set(name, `http://127.0.0.1:${workerMetricsPorts[i - 1]}/metrics`);
      sdkMetricsUrls.set(name, `http://127.0.0.1:${sdkMetricsPorts[i - 1]}/metrics`);
      workers.push(worker);
      processes.push(worker);
    }
    // Started together: each spends most of its start-up waiting on Temporal, not on the CPU.
    await Promise.all(workers.map((w) => w.start()));

    const gateways = gatewayPorts.map((gatewayPort, i) => {
      const name = `gateway-${i + 1}`;
      const url = `http://127.0.0.1:${gatewayPort}`;
      metricsUrls.set(name, `${url}/metrics`);
      const gateway = new ManagedProcess({
        name,
        command: nodeBinary(),
        args: [path.join(REPO_ROOT, 'gateway', 'main.ts')],
        // HAProxy reaches the gateways from loopback and names the client in X-Forwarded-For (login limits count it).
        env: { ...hitloopEnv, HITLOOP_GATEWAY_PORT: String(gatewayPort), HITLOOP_GATEWAY_HOST: '127.0.0.1', HITLOOP_TRUSTED_PROXIES: '127.0.0.1' },
        logFile: path.join(stateDir, 'logs', `${name}.log`),
        readyProbe: async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.ok === true,
        readyTimeoutMs: 120_000,
      });
      processes.push(gateway);
      return gateway;
    });
    await Promise.all(gateways.map((g) => g.start()));
    processes.push(proxy.process);
    await proxy.process.start();
    log(`stack up in ${Math.round((Date.now() - started) / 1000)} s`);

    return {
      stateDir,
      temporalAddress: cluster.address,
      namespace,
      httpsUrl: proxy.url,
      uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`,
      certificateFile: proxy.certificateFile,
      databaseUrl,
      settings,
      temporal: cluster.processes,
      workers,
      gateways,
      proxy: proxy.process,
      ui,
      metricsUrls,
      sdkMetricsUrls,
      processes: () => [...processes],
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The Web UI server reads `<root>/config/<env>.yaml`. */
function uiServerProcess(
  binaries: TemporalServerBinaries,
  stateDir: string,
  temporalAddress: string,
  port: number,
  namespace: string,
): ManagedProcess {
  const root = path.join(stateDir, 'ui');
  fs.mkdirSync(path.join(root, 'config'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'config', 'production.yaml'),
    YAML.stringify({
      temporalGrpcAddress: temporalAddress,
      host: '127.0.0.1',
      port,
      enableUi: true,
      defaultNamespace: namespace,
      cors: { allowOrigins: [] },
    }),
  );
  return new ManagedProcess({
    name: 'temporal-ui',
    command: binaries.uiServer,
    args: ['--root', root, '--env', 'production', 'start'],
    env: process.env,
    logFile: path.join(stateDir, 'logs', 'temporal-ui.log'),
    readyProbe: () => acceptsConnections(port),
    readyTimeoutMs: 60_000,
  });
}
