/**
 * A simulated crowd worker for the chaos run, over the real gateway protocol (docs/protocol.md).
 * It behaves as the protocol asks of a client, with a seeded share of mishaps: it drops its socket
 * mid-task or right after sending its submit (then reconnects, to any gateway, and resumes), and
 * now and then abandons a unit altogether (a new page load: the unit must come back to the pool
 * after the reconnect window). Every acknowledged submission and every outbox seq it receives is
 * written to the ledger, which the invariants check against the database.
 */
import { randomUUID } from 'node:crypto';
import { isActiveAgentStatus } from '../model/status.ts';
import type { Ledger } from './ledger.ts';
import { MOCK_MARKET, type WorkerMarket } from './mturkMarket.ts';
import { ProtocolError, ProtocolSocket, SocketClosedError, agentDetailsOf, type AgentDetails, type ServerPacket } from './protocolClient.ts';
import type { SeededRandom } from './random.ts';

export interface WorkerBehaviour {
  /** Drops its connection now and then (before submitting, and right after sending its submit). */
  dropper: boolean;
  /** Chance per unit of walking away from it for good (no resume, no submit). */
  abandonRate: number;
  /** Time spent on a unit before submitting, ms. */
  thinkMs: [number, number];
  /** Live updates sent per unit, at most. */
  maxLiveActions: number;
}

export interface WorkerEnvironment {
  runId: string;
  gatewayUrls: readonly string[];
  ledger: Ledger;
  /** Resolves when the worker may take a new unit (the harness paces the run around its faults). */
  gate(): Promise<void>;
  /** True once the harness has seen the run end. */
  stopped(): boolean;
  /** How the worker appears to the run's provider (default: the mock provider's worker_id). */
  market?: WorkerMarket;
  /** The worker's task-link parameters, for providers other than `mock` (default `{worker_id}`). */
  params?: (workerId: string) => Promise<Record<string, string>>;
}

interface Held {
  agent: AgentDetails;
  /** The task link's parameters the agent registered with. */
  params: Record<string, string>;
  submission: { submitKey: string; data: Record<string, unknown>; dataJson: string; nonce: string } | null;
  acked: boolean;
  droppedBeforeSubmit: boolean;
}

/** Long enough for a Temporal restart plus the gateway's own retries (30 s for signals). */
const ANSWER_TIMEOUT_MS = 90_000;
/** How long after the run's end a worker keeps coming back to finish a unit it sent a submission for. */
export const FINISH_AFTER_END_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSimulatedWorker(workerId: string, env: WorkerEnvironment, rng: SeededRandom, behaviour: WorkerBehaviour): Promise<void> {
  const { ledger } = env;
  let socket: ProtocolSocket | null = null;
  /** The agent the current socket is bound to at the gateway (messages belong to it). */
  let socketAgent: string | null = null;
  let held: Held | null = null;
  let registrationKey: string | null = null;
  /** Parameters of the registration in progress (an MTurk worker's accepted HIT), kept across retries. */
  let registrationParams: Record<string, string> | null = null;
  const market = env.market ?? MOCK_MARKET;
  let failures = 0;
  const lastSeq = new Map<string, number>();
  let finishBy: number | null = null;
  /**
   * Whether to go on: while the run is on; after its end, only to finish a unit the worker sent a
   * submission for, as a real page does when it comes back (it resumes, hears that the unit was
   * stored, and tells the provider: MTurk's externalSubmit). A worker that stopped at once lost that
   * last step when its socket dropped right after the submit of the run's last unit: hitloop stored
   * the unit and the run ended, but the assignment was never submitted at MTurk.
   */
  const goOn = (): boolean => {
    if (!env.stopped()) return true;
    if (!held?.submission) return false;
    finishBy ??= Date.now() + FINISH_AFTER_END_MS;
    return Date.now() < finishBy;
  };

  const openSocket = async (): Promise<ProtocolSocket> => {
    for (let attempt = 0; ; attempt++) {
      const url = rng.pick(env.gatewayUrls);
      try {
        const s = await ProtocolSocket.connect(url, 5_000);
        s.onPacket = (p) => {
          if (p.type === 'agent') socketAgent = String(p.agentId);
        };
        s.onMessage = (p) => {
          if (!socketAgent || typeof p.seq !== 'number') return;
          ledger.delivered(socketAgent, p.seq);
          lastSeq.set(socketAgent, Math.max(lastSeq.get(socketAgent) ?? 0, p.seq));
          const payload = p.payload as { status?: string } | null;
          if (p.kind === 'status' && payload?.status === 'submit_refused') {
            ledger.anomaly(`${workerId}: agent ${socketAgent} got submit_refused (${JSON.stringify(p.payload)})${held?.acked ? ' AFTER a submit_ack' : ''}`);
            ledger.count('submitRefused');
          }
        };
        socketAgent = null;
        ledger.count('connections');
        return s;
      } catch (err) {
        ledger.count('connectFailures');
        if (!goOn()) throw err;
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 4)) * (0.5 + rng.next()));
      }
    }
  };

  const isAnswer = (ref: string, id?: string) => (p: ServerPacket): boolean => p.type === 'error' && p.ref === ref && (id === undefined || p.id === id);

  /** The held agent has ended (submitted or otherwise): the worker is free again. */
  const release = (status: string): void => {
    if (held) market.ended(held.params, status, held.submission?.data ?? null);
    if (held?.submission && !held.acked) ledger.unacked.push({ agentId: held.agent.agentId, submitKey: held.submission.submitKey, nonce: held.submission.nonce, why: `agent ended ${status} before an ack` });
    ledger.count(`ended:${status}`);
    held = null;
  };

  const dropSocket = (): void => {
    socket?.drop();
    socket = null;
    socketAgent = null;
  };

  // However the worker stops (the run over, a refusal, an error thrown), its socket closes: an agent it
  // still holds then gets its reconnect window, instead of staying bound to a live gateway with no one
  // working on it until the assignment's duration (which outlasts a small chaos run).
  try {
    while (goOn()) {
      try {
        if (!socket || !socket.isOpen) {
          socket = await openSocket();
          if (held) {
            // A reconnect: take the same agent back, with the messages missed.
            socket.send({ type: 'resume', runId: env.runId, agentId: held.agent.agentId, token: held.agent.token, lastSeq: lastSeq.get(held.agent.agentId) ?? 0 });
            const answer = await socket.next((p) => p.type === 'agent' || isAnswer('resume')(p), ANSWER_TIMEOUT_MS, 'answer to resume');
            if (answer.type === 'agent') {
              ledger.count('resumes');
            } else if (answer.code === 'agent_ended') {
              release(String(answer.status));
            } else if (answer.code === 'temporal_unavailable' || answer.code === 'internal') {
              ledger.count(`resumeError:${String(answer.code)}`);
              dropSocket();
              await sleep(500 + rng.int(0, 1000));
              continue;
            } else {
              ledger.anomaly(`${workerId}: resume of agent ${held.agent.agentId} refused: ${String(answer.code)} ${String(answer.message)}`);
              market.ended(held.params, 'lost', null);
              held = null;
            }
          }
        }
        const s = socket;
        if (!held) {
          await env.gate();
          if (env.stopped()) break;
          registrationKey ??= randomUUID();
          registrationParams ??= env.params ? await env.params(workerId) : market.params(workerId);
          if (!registrationParams) {
            ledger.count('noProviderWork');
            await sleep(rng.int(200, 600));
            continue;
          }
          s.send({ type: 'register', runId: env.runId, params: registrationParams, registrationKey });
          const answer = await s.next((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'onboarding' || isAnswer('register')(p), ANSWER_TIMEOUT_MS, 'answer to register');
          if (answer.type === 'agent') {
            registrationKey = null;
            held = { agent: agentDetailsOf(answer), params: registrationParams, submission: null, acked: false, droppedBeforeSubmit: false };
            registrationParams = null;
            ledger.count(answer.resumed ? 'registrationsRetriedToSameAgent' : 'assigned');
          } else if (answer.type === 'onboarding') {
            ledger.anomaly(`${workerId}: register answered with onboarding; the chaos run has no onboarding`);
            return;
          } else if (answer.type === 'refused') {
            registrationKey = null;
            ledger.count(`refused:${String(answer.reason)}`);
            // The page asks the worker to give their place back (an MTurk worker returns the HIT), so
            // that a worker the run can still give a unit to may take it; they look for work again later.
            if (market.refused?.(registrationParams)) registrationParams = null;
            if (answer.reason === 'run_not_running') return;
            if (answer.reason !== 'no_units_available' && answer.reason !== 'too_many_concurrent') {
              ledger.anomaly(`${workerId}: refused ${String(answer.reason)}: ${String(answer.detail)}`);
              return;
            }
            await sleep(rng.int(100, 400));
            continue;
          } else {
            // Same key next time: a registration that went through meanwhile is found again.
            ledger.count(`registerError:${String(answer.code)}`);
            if (answer.code !== 'temporal_unavailable' && answer.code !== 'internal' && answer.code !== 'unknown_run') {
              ledger.anomaly(`${workerId}: register answered ${String(answer.code)}: ${String(answer.message)}`);
            }
            await sleep(500 + rng.int(0, 1000));
            continue;
          }
        }
        const h = held;
        if (!h) continue;
        // The page may be worked on once the task has started.
        await s.until(() => s.status === 'in_task' || !isActiveAgentStatus(s.status), ANSWER_TIMEOUT_MS, 'the in_task status');
        if (!isActiveAgentStatus(s.status)) {
          release(s.status);
          continue;
        }
        if (!h.submission) {
          await sleep(rng.int(behaviour.thinkMs[0], behaviour.thinkMs[1]));
          const lives = rng.int(0, behaviour.maxLiveActions);
          for (let i = 0; i < lives; i++) {
            const actionId = `${h.agent.agentId.slice(0, 8)}-live-${randomUUID()}`;
            s.send({ type: 'live', actionId, data: { draft: `draft ${i} by ${workerId}` } });
            const answer = await s.next((p) => (p.type === 'live_ack' && p.actionId === actionId) || isAnswer('live', actionId)(p), ANSWER_TIMEOUT_MS, 'live_ack');
            ledger.count(answer.type === 'live_ack' ? 'liveAcked' : `liveError:${String(answer.code)}`);
          }
          if (rng.chance(behaviour.abandonRate)) {
            // A new page load: this agent is never resumed; its unit must come back after the reconnect window.
            ledger.count('abandoned');
            dropSocket();
            market.ended(h.params, 'abandoned', null);
            held = null;
            continue;
          }
          if (behaviour.dropper && !h.droppedBeforeSubmit && rng.chance(0.3)) {
            h.droppedBeforeSubmit = true;
            ledger.count('dropsBeforeSubmit');
            dropSocket();
            await sleep(rng.int(0, 3000));
            continue;
          }
          const nonce = `${workerId}-${h.agent.agentId}-${rng.int(0, 1e9)}`;
          // Text that shows any change of bytes: non-ASCII, an emoji, quotes, a backslash, a newline.
          const data = { label: rng.pick(['positive', 'negative']), comment: `${nonce} · ünïcødé ✓ "quoted" \\ slash\nline two 🚀` };
          h.submission = { submitKey: `submit-${h.agent.agentId}`, data, dataJson: JSON.stringify(data), nonce };
        }
        const sub = h.submission;
        s.send({ type: 'submit', submitKey: sub.submitKey, data: sub.data });
        if (behaviour.dropper && rng.chance(0.15)) {
          // Gone before the ack: after the resume the same submit (same key) goes again.
          ledger.count('dropsRightAfterSubmit');
          dropSocket();
          await sleep(rng.int(0, 2000));
          continue;
        }
        const answer = await s.next((p) => (p.type === 'submit_ack' && p.submitKey === sub.submitKey) || isAnswer('submit', sub.submitKey)(p), ANSWER_TIMEOUT_MS, 'submit_ack');
        if (answer.type === 'submit_ack') {
          if (!h.acked) {
            h.acked = true;
            ledger.acked.push({ workerId, agentId: h.agent.agentId, unitId: h.agent.unitId, submitKey: sub.submitKey, dataJson: sub.dataJson, nonce: sub.nonce, ackedAt: new Date() });
          }
        } else if (answer.code === 'already_submitted') {
          ledger.count('alreadySubmitted');
        } else if (answer.code === 'agent_ended') {
          release(String(answer.status ?? 'ended'));
          continue;
        } else if (answer.code === 'not_in_task' || answer.code === 'temporal_unavailable' || answer.code === 'internal') {
          ledger.count(`submitError:${String(answer.code)}`);
          await sleep(500 + rng.int(0, 1000));
          continue;
        } else {
          ledger.anomaly(`${workerId}: submit of agent ${h.agent.agentId} answered ${String(answer.code)}: ${String(answer.message)}`);
          release('refused');
          continue;
        }
        // Stored once the `completed` status arrives (or a resume reports the agent ended).
        await s.until(() => !isActiveAgentStatus(s.status), ANSWER_TIMEOUT_MS, 'the completed status');
        release(s.status);
        failures = 0;
      } catch (err) {
        if (!(err instanceof SocketClosedError || err instanceof ProtocolError)) throw err;
        ledger.count(err instanceof SocketClosedError ? 'connectionsLost' : 'answerTimeouts');
        dropSocket();
        failures += 1;
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 4)) * (0.5 + rng.next()));
      }
    }
  } finally {
    socket?.close();
  }
}
