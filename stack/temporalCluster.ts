/**
 * A real Temporal cluster on PostgreSQL, as processes on this machine: the schemas set up (and
 * upgraded) with temporal-sql-tool, one server config, the four services in one process or in four
 * (`split`), and the namespace with hitloop's search attributes registered through the API.
 *
 *   const cluster = await prepareTemporalCluster({ binaries, stateDir, postgres, mode: 'split' });
 *   for (const p of cluster.processes) await p.start();
 *   await registerNamespace(cluster.address, 'default');
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import YAML from 'yaml';
import { ManagedProcess } from '../chaos/managedProcess.ts';
import { acceptsConnections } from '../toolchain/ports.ts';
import type { TemporalServerBinaries } from '../toolchain/temporalServer.ts';
import { HITLOOP_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes.ts';

export const TEMPORAL_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type TemporalService = (typeof TEMPORAL_SERVICES)[number];
export type ServicesMode = 'single' | 'split';

const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const DYNAMIC_CONFIG_FILE = path.join(REPO_ROOT, 'deploy', 'temporal', 'dynamicconfig.yaml');
const SQL_PLUGIN = 'postgres12';

export interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface ClusterPorts {
  /** Frontend gRPC: what clients and workers connect to. */
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  /**
   * First of four membership ports. PostgreSQL stores them in cluster_membership.rpc_port, a SMALLINT:
   * a port above 32767 kills every service at start, so these stay low.
   */
  membershipBase: number;
}

export interface ClusterOptions {
  binaries: TemporalServerBinaries;
  /** Config and logs go here. */
  stateDir: string;
  postgres: PostgresTarget;
  /** Database names of the default store and of visibility. */
  databases?: { store: string; visibility: string };
  mode?: ServicesMode;
  ports?: Partial<ClusterPorts>;
  logLevel?: string;
}

export interface TemporalCluster {
  address: string;
  mode: ServicesMode;
  /** One process (`temporal`) or one per service (`temporal-frontend`, ...), not yet started. */
  processes: ManagedProcess[];
  configFile: string;
}

export function postgresTargetFromUrl(url: string): PostgresTarget {
  const parsed = new URL(url);
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw new Error(`${url} is not a postgresql:// URL; the Temporal cluster keeps its state in PostgreSQL`);
  }
  return {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

/**
 * Creates the two databases if missing and brings their schemas to the version this server ships
 * (temporal-sql-tool's versioned upgrades): safe to run on every start.
 */
export async function setUpSchemas(
  binaries: TemporalServerBinaries,
  pg: PostgresTarget,
  databases: { store: string; visibility: string },
  log: (line: string) => void,
): Promise<void> {
  const schemas = [
    { db: databases.store, dir: path.join(binaries.schemaDir, 'postgresql', 'v12', 'temporal', 'versioned') },
    { db: databases.visibility, dir: path.join(binaries.schemaDir, 'postgresql', 'v12', 'visibility', 'versioned') },
  ];
  for (const { db, dir } of schemas) {
    const base = ['--plugin', SQL_PLUGIN, '--endpoint', pg.host, '--port', String(pg.port), '--user', pg.user, '--database', db];
    // The password goes through the environment, not the command line (ps shows arguments).
    const run = (args: string[]) =>
      promisify(execFile)(binaries.sqlTool, [...base, ...args], { env: { ...process.env, SQL_PASSWORD: pg.password } });
    try {
      await run(['create-database']);
    } catch (err) {
      if (!/already exists/i.test(String((err as { stderr?: string }).stderr ?? err))) throw sqlToolError(db, 'create-database', err);
    }
    // setup-schema -v 0.0 creates the version table only when it is missing; update-schema applies
    // every versioned step above the recorded version, so a restart after an upgrade migrates.
    for (const args of [
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '-d', dir],
    ]) {
      try {
        await run(args);
      } catch (err) {
        throw sqlToolError(db, args[0]!, err);
      }
    }
    log(`Temporal schema of ${db}: up to date (${path.relative(binaries.schemaDir, dir)})`);
  }
}

function sqlToolError(db: string, step: string, err: unknown): Error {
  const stderr = String((err as { stderr?: string }).stderr ?? '')
    .trim()
    .split('\n')
    .slice(-5)
    .join('\n');
  return new Error(
    `temporal-sql-tool ${step} on database ${db} failed: ${stderr || (err as Error).message}. Check that PostgreSQL answers and that the role may create databases.`,
    {
      cause: err,
    },
  );
}

/** A port below 32768 that was free a moment ago, with `count - 1` free ports after it. */
export async function freeLowPorts(count: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_767 - 20_000 - count));
    const free = await Promise.all(Array.from({ length: count }, (_, i) => isFree(base + i, host)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`found no ${count} consecutive free ports between 20000 and 32767 on ${host}`);
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export async function chooseClusterPorts(given: Partial<ClusterPorts> = {}): Promise<ClusterPorts> {
  const base = await freeLowPorts(9);
  return {
    frontend: given.frontend ?? base,
    frontendHttp: given.frontendHttp ?? base + 1,
    history: given.history ?? base + 2,
    matching: given.matching ?? base + 3,
    worker: given.worker ?? base + 4,
    membershipBase: given.membershipBase ?? base + 5,
  };
}

/** The server config (`production.yaml`): PostgreSQL stores, loopback services, hitloop's dynamic config. */
export function serverConfig(
  pg: PostgresTarget,
  databases: { store: string; visibility: string },
  ports: ClusterPorts,
  logLevel: string,
): string {
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: SQL_PLUGIN,
      databaseName,
      connectAddr: `${pg.host}:${pg.port}`,
      connectProtocol: 'tcp',
      user: pg.user,
      password: pg.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const rpc = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: '127.0.0.1', ...extra },
  });
  const frontend = `127.0.0.1:${ports.frontend}`;
  return YAML.stringify({
    log: { stdout: true, level: logLevel },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      datastores: { default: store(databases.store, 20), visibility: store(databases.visibility, 4) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: rpc(ports.frontend, ports.membershipBase, { httpPort: ports.frontendHttp }),
      history: rpc(ports.history, ports.membershipBase + 1),
      matching: rpc(ports.matching, ports.membershipBase + 2),
      worker: rpc(ports.worker, ports.membershipBase + 3),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: frontend,
          httpAddress: `127.0.0.1:${ports.frontendHttp}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: DYNAMIC_CONFIG_FILE, pollInterval: '10s' },
  });
}

/** Writes the config (ports kept from an earlier start, so a restart finds the same cluster) and the processes to start. */
export async function prepareTemporalCluster(opts: ClusterOptions): Promise<TemporalCluster> {
  const mode = opts.mode ?? 'single';
  const databases = opts.databases ?? { store: 'temporal', visibility: 'temporal_visibility' };
  const root = path.join(opts.stateDir, 'temporal');
  const configDir = path.join(root, 'config');
  fs.mkdirSync(configDir, { recursive: true });
  const portsFile = path.join(root, 'ports.json');
  const saved = fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as Partial<ClusterPorts>) : {};
  const ports = await chooseClusterPorts({ ...saved, ...opts.ports });
  fs.writeFileSync(portsFile, `${JSON.stringify(ports, null, 2)}\n`);
  const configFile = path.join(configDir, 'production.yaml');
  fs.writeFileSync(configFile, serverConfig(opts.postgres, databases, ports, opts.logLevel ?? 'warn'), { mode: 0o600 });

  const address = `127.0.0.1:${ports.frontend}`;
  const serverProcess = (name: string, services: readonly TemporalService[]) =>
    new ManagedProcess({
      name,
      command: opts.binaries.server,
      args: [
        '--root',
        root,
        '--config',
        'config',
        '--env',
        'production',
        '--allow-no-auth',
        'start',
        ...services.flatMap((s) => ['--service', s]),
      ],
      env: process.env,
      logFile: path.join(opts.stateDir, 'logs', `${name}.log`),
      readyProbe: () => acceptsConnections(portOf(ports, services[0]!)),
      readyTimeoutMs: 120_000,
    });
  fs.mkdirSync(path.join(opts.stateDir, 'logs'), { recursive: true });
  const processes =
    mode === 'single' ? [serverProcess('temporal', TEMPORAL_SERVICES)] : TEMPORAL_SERVICES.map((s) => serverProcess(`temporal-${s}`, [s]));
  return { address, mode, processes, configFile };
}

/** The port that answers once a service is up: its gRPC port, or for the worker service (which serves no gRPC) its membership port. */
function portOf(ports: ClusterPorts, service: TemporalService): number {
  return service === 'worker' ? ports.membershipBase + TEMPORAL_SERVICES.indexOf('worker') : ports[service];
}

const ALREADY_EXISTS = 6;
const NOT_FOUND = 5;

/**
 * Registers the namespace if missing and adds hitloop's search attributes that are missing, through
 * the operator API (one call with a map of name -> type: no flag pairing to get wrong). Waits until
 * the namespace answers with every attribute, since the frontend's namespace cache lags a register.
 */
export async function registerNamespace(
  address: string,
  namespace: string,
  opts: { retentionDays?: number; timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<void> {
  const log = opts.log ?? (() => {});
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  const connection = await connectWithin(address, deadline);
  try {
    const { workflowService, operatorService } = connection;
    try {
      await workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs((opts.retentionDays ?? 30) * 86_400_000),
      });
      log(`Temporal namespace ${namespace}: registered`);
    } catch (err) {
      if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
    }
    const wanted = Object.fromEntries(
      HITLOOP_SEARCH_ATTRIBUTES.map((key) => [key.name, proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    );
    for (;;) {
      try {
        const { customAttributes } = await operatorService.listSearchAttributes({ namespace });
        const missing = Object.fromEntries(Object.entries(wanted).filter(([name]) => !(customAttributes ?? {})[name]));
        if (Object.keys(missing).length === 0) {
          await workflowService.describeNamespace({ namespace });
          log(`Temporal namespace ${namespace}: search attributes ${Object.keys(wanted).join(', ')} registered`);
          return;
        }
        await operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (Date.now() > deadline)
          throw new Error(`Temporal namespace ${namespace} at ${address} did not become usable: ${(err as Error).message}`, { cause: err });
        if (code !== NOT_FOUND && code !== ALREADY_EXISTS && code !== 14 /* UNAVAILABLE */ && code !== 4 /* DEADLINE */) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    await connection.close();
  }
}

async function connectWithin(address: string, deadline: number): Promise<Connection> {
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: '5s' });
      await connection.workflowService.getSystemInfo({});
      return connection;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`the Temporal frontend at ${address} does not answer: ${(err as Error).message}`, { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

// `node stack/temporalCluster.ts register`: the namespace and search attributes on the server at
// TEMPORAL_ADDRESS (docker-compose.yml's temporal-namespace job; any shared server).
if (import.meta.main) {
  const [command] = process.argv.slice(2);
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  if (command !== 'register') {
    process.stderr.write('usage: node stack/temporalCluster.ts register   (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE say where)\n');
    process.exit(2);
  }
  try {
    await registerNamespace(address, namespace, { log: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
