/**
 * One simulated worker: registers, waits for its task to start, optionally sends live updates,
 * "thinks", optionally drops its connection and resumes (on the next gateway instance), submits a
 * valid answer, and goes again until the run has no more work for it.
 *
 * A lost connection is never fatal: the worker reconnects (to the next gateway in its list) and
 * resumes its agent with its token, or, if it had none yet, repeats its register with the same
 * registration key so that an assignment made meanwhile is found again rather than duplicated.
 */
import type { AgentPacket, ErrorPacket, OnboardingPacket, RefusedPacket, ServerPacket } from '../gateway/protocol.ts';
import { isActiveAgentStatus } from '../model/status.ts';
import type { RefusalReason } from '../workflows/definitions.ts';
import { AgentConnection, ConnectionLost } from './agentConnection.ts';
import { simulatedAnswer } from './answers.ts';

export interface SimulationStats {
  registrations: number;
  assigned: number;
  submitted: number;
  refusals: Partial<Record<RefusalReason, number>>;
  /** Agents that ended without a submission, by final status. */
  ended: Record<string, number>;
  /** Onboarding forms answered. */
  onboardings: number;
  drops: number;
  resumes: number;
  connectionsLost: number;
  liveSent: number;
  liveReceived: number;
}

export const emptyStats = (): SimulationStats => ({
  registrations: 0,
  assigned: 0,
  submitted: 0,
  refusals: {},
  ended: {},
  onboardings: 0,
  drops: 0,
  resumes: 0,
  connectionsLost: 0,
  liveSent: 0,
  liveReceived: 0,
});

export interface ScriptedWorkerOptions {
  runId: string;
  workerId: string;
  /** The task link's query parameters (the worker's identity for the run's provider). */
  params: Record<string, string>;
  /** WebSocket URLs of the gateways; the worker starts at `firstGateway` and moves on after a lost connection. */
  gatewayUrls: string[];
  firstGateway: number;
  thinkMs: number;
  /** Chance per unit of dropping the connection before submitting, then resuming. */
  dropRate: number;
  dropPauseMs: number;
  /** Live updates sent per unit before submitting. */
  liveActions: number;
  /** Wait between registrations refused with no_units_available / too_many_concurrent. */
  pollMs: number;
  /** Stop after this many submitted units (0: no limit). */
  maxUnits: number;
  /** Answers to the run's onboarding form; default: a made-up valid answer (which may well fail). */
  onboardingAnswers?: Record<string, unknown>;
  random: () => number;
  signal: AbortSignal;
  stats: SimulationStats;
}

export interface WorkerOutcome {
  workerId: string;
  submitted: number;
  /** Why it stopped: a refusal reason (run_not_running, max_for_task, ...), `max_units` or `aborted`. */
  finishedBecause: string;
}

const RETRY_LATER: ReadonlySet<string> = new Set(['no_units_available', 'too_many_concurrent']);
const LONG_WAIT_MS = 24 * 60 * 60 * 1000;
const REPLY_TIMEOUT_MS = 180_000;

interface HeldAgent {
  agentId: string;
  token: string;
  initData: unknown;
  submitKey: string;
  lastSeq: number;
  livesSent: number;
  dropped: boolean;
}

class Aborted extends Error {}

export async function runScriptedWorker(o: ScriptedWorkerOptions): Promise<WorkerOutcome> {
  const { stats } = o;
  let gateway = o.firstGateway;
  let conn: AgentConnection | null = null;
  let agent: HeldAgent | null = null;
  let registrationKey: string | null = null;
  let submitted = 0;
  let unknownRunAnswers = 0;
  const key = (): string => `${o.workerId}-${Date.now().toString(36)}-${Math.floor(o.random() * 1e9).toString(36)}`;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (o.signal.aborted) return resolve();
      const timer = setTimeout(resolve, ms);
      o.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  const onAbort = (): void => conn?.close();
  o.signal.addEventListener('abort', onAbort, { once: true });

  const retire = (c: AgentConnection | null): void => {
    if (!c) return;
    stats.liveReceived += c.lives.length;
    if (agent) agent.lastSeq = Math.max(agent.lastSeq, c.lastSeq);
  };
  const finish = (because: string): WorkerOutcome => {
    o.signal.removeEventListener('abort', onAbort);
    retire(conn);
    conn?.close();
    conn = null;
    return { workerId: o.workerId, submitted, finishedBecause: because };
  };

  async function connect(): Promise<AgentConnection> {
    for (let failures = 0; ; failures++) {
      if (o.signal.aborted) throw new Aborted();
      const url = o.gatewayUrls[gateway % o.gatewayUrls.length]!;
      try {
        return await AgentConnection.open(url);
      } catch (err) {
        if (failures >= 100) throw new Error(`worker ${o.workerId} cannot reach any gateway (last: ${url}: ${(err as Error).message})`, { cause: err });
        gateway += 1;
        await sleep(Math.min(2_000, 50 * (failures + 1)));
      }
    }
  }

  function isReplyTo(ref: string, id?: string) {
    return (p: ServerPacket): boolean => p.type === 'error' && p.ref === ref && (id === undefined || p.id === id);
  }

  function countEnd(status: string): void {
    if (status === 'completed') {
      submitted += 1;
      stats.submitted += 1;
    } else {
      stats.ended[status] = (stats.ended[status] ?? 0) + 1;
    }
  }

  /** Resume the held agent on a fresh socket; false when the agent had ended meanwhile. */
  async function resume(c: AgentConnection, a: HeldAgent): Promise<boolean> {
    c.resume(o.runId, a.agentId, a.token, a.lastSeq);
    const reply = await c.expect<AgentPacket | ErrorPacket>((p) => p.type === 'agent' || isReplyTo('resume')(p), REPLY_TIMEOUT_MS, 'answer to resume');
    if (reply.type === 'agent') {
      stats.resumes += 1;
      return true;
    }
    if (reply.code === 'agent_ended') {
      countEnd(reply.status ?? 'expired');
      return false;
    }
    if (reply.code === 'temporal_unavailable' || reply.code === 'internal') {
      c.close();
      throw new ConnectionLost(1011, reply.message);
    }
    throw new Error(`worker ${o.workerId}: resume refused: ${reply.code}: ${reply.message}`);
  }

  /** 'assigned', 'retry', or the reason the worker is done. */
  async function register(c: AgentConnection): Promise<string> {
    registrationKey ??= key();
    stats.registrations += 1;
    c.register(o.runId, o.params, registrationKey);
    let reply = await c.expect<AgentPacket | OnboardingPacket | RefusedPacket | ErrorPacket>(
      (p) => p.type === 'agent' || p.type === 'onboarding' || p.type === 'refused' || isReplyTo('register')(p),
      REPLY_TIMEOUT_MS,
      'answer to register',
    );
    if (reply.type === 'onboarding') {
      // Answered on this socket; if it drops, the same registration key finds this onboarding again.
      stats.onboardings += 1;
      const submitKey = key();
      c.send({ type: 'submit', submitKey, data: o.onboardingAnswers ?? simulatedAnswer(reply.initData, o.random, o.workerId) });
      reply = await c.expect<AgentPacket | RefusedPacket | ErrorPacket>(
        (p) => p.type === 'agent' || p.type === 'refused' || isReplyTo('submit', submitKey)(p),
        REPLY_TIMEOUT_MS,
        'the onboarding decision',
      );
    }
    if (reply.type === 'agent') {
      registrationKey = null;
      stats.assigned += 1;
      agent = { agentId: reply.agentId, token: reply.token, initData: reply.initData, submitKey: key(), lastSeq: 0, livesSent: 0, dropped: false };
      return 'assigned';
    }
    if (reply.type === 'refused') {
      registrationKey = null;
      stats.refusals[reply.reason] = (stats.refusals[reply.reason] ?? 0) + 1;
      return RETRY_LATER.has(reply.reason) ? 'retry' : reply.reason;
    }
    if (reply.code === 'unknown_run' && ++unknownRunAnswers < 30) return 'retry';
    if (reply.code === 'temporal_unavailable') return 'retry';
    throw new Error(`worker ${o.workerId}: ${reply.ref ?? 'register'} refused: ${reply.code}: ${reply.message}`);
  }

  /** Work on the held agent until it ends (or the connection is dropped on purpose). */
  async function work(c: AgentConnection, a: HeldAgent): Promise<void> {
    await c.until(() => c.status === 'in_task' || !isActiveAgentStatus(c.status), LONG_WAIT_MS, 'the task to start');
    if (c.status !== 'in_task') {
      countEnd(c.status);
      agent = null;
      return;
    }
    while (a.livesSent < o.liveActions) {
      const actionId = `${a.agentId}-live-${a.livesSent}`;
      c.send({ type: 'live', actionId, data: { text: `message ${a.livesSent} from ${o.workerId}`, n: a.livesSent } });
      await c.expect((p) => (p.type === 'live_ack' && p.actionId === actionId) || isReplyTo('live', actionId)(p), REPLY_TIMEOUT_MS, 'live_ack');
      a.livesSent += 1;
      stats.liveSent += 1;
    }
    if (o.thinkMs > 0) await sleep(o.thinkMs * (0.5 + o.random()));
    if (!a.dropped && o.dropRate > 0 && o.random() < o.dropRate) {
      a.dropped = true;
      stats.drops += 1;
      retire(c);
      conn = null;
      c.drop();
      await sleep(o.dropPauseMs);
      return;
    }
    if (c.status === 'in_task') {
      c.send({ type: 'submit', submitKey: a.submitKey, data: simulatedAnswer(a.initData, o.random, o.workerId) });
      const reply = await c.expect<ServerPacket>(
        (p) => (p.type === 'submit_ack' && p.submitKey === a.submitKey) || isReplyTo('submit', a.submitKey)(p),
        REPLY_TIMEOUT_MS,
        'submit_ack',
      );
      if (reply.type === 'error' && reply.code !== 'already_submitted') {
        if (reply.code === 'temporal_unavailable') return void (await sleep(500));
        if (reply.code !== 'agent_ended') throw new Error(`worker ${o.workerId}: submit refused: ${reply.code}: ${reply.message}`);
      }
    }
    await c.until(() => !isActiveAgentStatus(c.status), LONG_WAIT_MS, 'the submission to be recorded');
    countEnd(c.status);
    agent = null;
  }

  for (;;) {
    if (o.signal.aborted) return finish('aborted');
    if (o.maxUnits > 0 && submitted >= o.maxUnits) return finish('max_units');
    try {
      if (!conn || conn.closed) {
        retire(conn);
        conn = await connect();
        if (agent && !(await resume(conn, agent))) agent = null;
      }
      if (!agent) {
        const outcome = await register(conn);
        if (outcome === 'retry') await sleep(o.pollMs * (0.5 + o.random()));
        else if (outcome !== 'assigned') return finish(outcome);
        continue;
      }
      await work(conn, agent);
    } catch (err) {
      if (err instanceof Aborted || o.signal.aborted) return finish('aborted');
      if (!(err instanceof ConnectionLost)) {
        finish('error');
        throw err;
      }
      stats.connectionsLost += 1;
      retire(conn);
      conn = null;
      // Another instance may be the one still up.
      gateway += 1;
    }
  }
}
