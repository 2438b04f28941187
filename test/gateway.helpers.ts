/**
 * Helpers of the gateway tests: a gateway on a test stack (in process, or as a process of its own),
 * raw protocol sockets, and a snapshot of
 * everything a packet could change in the database (to prove a refused packet changed nothing).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { ErrorPacket, ServerPacket } from '../gateway/protocol.ts';
import { type Gateway, type GatewayOptions, startGateway } from '../gateway/server.ts';
import type { Database } from '../model/database.ts';
import { Agent, OutboxMessage, Unit, Worker } from '../model/entities.ts';
import { AgentConnection } from '../simulate/agentConnection.ts';
import { gatewayWebSocketUrl } from '../simulate/simulate.ts';
import { freePort } from '../toolchain/ports.ts';
import { eventually, type Stack, testLog } from './support/stack.ts';

export function startTestGateway(stack: Stack, opts: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return startGateway({
    settings: stack.settings,
    db: stack.db,
    client: stack.env.client,
    log: testLog,
    pollIntervalMs: 50,
    ackFlushMs: 100,
    ...opts,
  });
}

export function connect(gateway: Gateway | string, opts: { answerPings?: boolean } = {}): Promise<AgentConnection> {
  return AgentConnection.open(typeof gateway === 'string' ? gateway : gateway.wsUrl, opts);
}

export interface Registered {
  conn: AgentConnection;
  agentId: string;
  token: string;
  assignmentId: string;
  unitId: string;
  initData: unknown;
}

/** Register a mock worker and wait for its agent (throws with the answer if it was not an agent). */
export async function register(
  conn: AgentConnection,
  runId: string,
  workerId: string,
  registrationKey = randomUUID(),
): Promise<Registered> {
  conn.register(runId, { worker_id: workerId }, registrationKey);
  const reply = await conn.expect(
    (p) => p.type === 'agent' || p.type === 'refused' || (p.type === 'error' && p.ref === 'register'),
    120_000,
    'register answer',
  );
  if (reply.type !== 'agent') throw new Error(`register of ${workerId} was answered with ${JSON.stringify(reply)}`);
  return {
    conn,
    agentId: reply.agentId,
    token: reply.token,
    assignmentId: reply.assignmentId,
    unitId: reply.unitId,
    initData: reply.initData,
  };
}

export async function untilStatus(conn: AgentConnection, status: string): Promise<void> {
  await conn.until(() => conn.status === status, 60_000, `status ${status}`);
}

/** The next error packet (optionally of a code). */
export function nextError(conn: AgentConnection, code?: string): Promise<ErrorPacket> {
  return conn.expect<ErrorPacket>(
    (p: ServerPacket) => p.type === 'error' && (code === undefined || p.code === code),
    30_000,
    `error ${code ?? ''}`,
  );
}

/** Everything a client packet could change: agents, units, workers, outbox. */
export async function snapshot(db: Database): Promise<unknown> {
  const em = db.em();
  const agents = await em.find(Agent, {}, { orderBy: { id: 'asc' }, fields: ['id', 'status', 'state', 'submission', 'submitKey'] });
  const units = await em.find(Unit, {}, { orderBy: { id: 'asc' }, fields: ['id', 'status'] });
  const workers = await em.count(Worker, {});
  const outbox = await em.find(OutboxMessage, {}, { orderBy: { id: 'asc' }, fields: ['id', 'seq', 'kind', 'payload'] });
  return {
    agents: agents.map((a) => [a.id, a.status, a.state ?? null, a.submission ?? null, a.submitKey ?? null]),
    units: units.map((u) => [u.id, u.status]),
    workers,
    outbox: outbox.map((m) => [m.id, m.seq, m.kind, m.payload]),
  };
}

export async function expectUnchanged(db: Database, before: unknown, settleMs = 300): Promise<void> {
  // Give a wrongly sent signal time to reach a workflow and its activities before looking.
  await new Promise((r) => setTimeout(r, settleMs));
  expect(await snapshot(db)).toEqual(before);
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GATEWAY_MAIN = path.join(ROOT, 'gateway', 'main.ts');

/** A gateway running as a process of its own (`node gateway/main.ts`, as `hitloop gateway` runs it). */
export interface GatewayProcess {
  url: string;
  wsUrl: string;
  child: ChildProcess;
  output(): string;
  /** SIGKILL: the crash the tests are about. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const gatewayChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of gatewayChildren) child.kill('SIGKILL');
});

/** Start a gateway process on the stack's database and Temporal; `env` adds or overrides variables. */
export async function startGatewayProcess(
  stack: Pick<Stack, 'settings'>,
  opts: { port?: number; env?: Record<string, string> } = {},
): Promise<GatewayProcess> {
  const port = opts.port ?? (await freePort());
  const child = spawn(process.execPath, [GATEWAY_MAIN], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      HITLOOP_DATABASE_URL: stack.settings.databaseUrl,
      TEMPORAL_ADDRESS: stack.settings.temporalAddress,
      HITLOOP_SECRET: stack.settings.secret,
      HITLOOP_GATEWAY_PORT: String(port),
      HITLOOP_LOG_LEVEL: 'warn',
      ...opts.env,
    },
  });
  gatewayChildren.add(child);
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
  }
  // The process says nothing on stdout (its logs are JSON on stderr): it is up once /readyz answers.
  const url = `http://127.0.0.1:${port}`;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  await eventually(async () => {
    if (exitedEarly) throw new Error(`gateway process exited before listening:\n${output.slice(-3000)}`);
    return (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined;
  }, `gateway on port ${port} to be ready`);
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    gatewayChildren.delete(child);
  };
  return { url, wsUrl: gatewayWebSocketUrl(url), child, output: () => output, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}

/** Launch a run and wait until it is running with units launched (all of them, or at least one). */
export async function launchRunning(
  stack: Stack,
  config: Record<string, unknown>,
  until: 'all-launched' | 'some-launched' = 'all-launched',
): Promise<string> {
  const { runId } = await stack.operator.launch(config);
  await eventually(
    async () => {
      const s = await stack.operator.status(runId);
      const launched = until === 'all-launched' ? s.units.created === 0 : s.units.launched > 0;
      return s.status === 'running' && launched ? true : undefined;
    },
    `run ${runId} to be running with ${until === 'all-launched' ? 'its units' : 'units'} launched`,
  );
  return runId;
}

/**
 * A JSON value as text with every object's own keys sorted (as nested pairs, so no key can alter
 * the result): equal exactly when the values are, whatever order a database gives object keys in.
 */
export function canonicalJson(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v === null || typeof v !== 'object') return v;
    return Object.keys(v)
      .sort()
      .map((key) => [key, canonical((v as Record<string, unknown>)[key])]);
  };
  return JSON.stringify(canonical(value));
}
