/**
 * One agent socket's state. Kept small (a gateway holds many): the bound agent, the outbox cursor,
 * a token bucket against floods, and a promise chain that keeps the socket's signals in order.
 */
import type { WebSocket } from 'ws';
import { isActiveAgentStatus } from '../model/status.ts';
import type { GatewayLimits } from './protocol.ts';

/** Unsent bytes a socket may queue before it is dropped as unresponsive. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export interface BoundAgent {
  agentId: string;
  runId: string;
  unitId: string;
  assignmentId: string;
  workerId: string;
}

/** A registration waiting for its onboarding answers (the `onboarding` outcome of a register). */
export interface PendingOnboarding {
  runId: string;
  onboardingAgentId: string;
  provider: string;
  providerWorkerId: string;
  registrationKey: string;
  /** The provider's session the page was opened from (WorkerIdentity.session), recorded with the agent. */
  session?: string;
}

export class GatewayConnection {
  readonly id: string;
  readonly ws: WebSocket;
  agent: BoundAgent | null = null;
  /** Set while the worker is onboarding (no agent yet): their next `submit` is the onboarding answer. */
  onboarding: PendingOnboarding | null = null;
  /** The agent's status as last seen (agent packet, then `status` messages delivered). */
  status = '';
  /** Highest outbox seq sent on this socket. */
  sentSeq = 0;
  /** Highest seq the client acknowledged, and the highest already written to the database. */
  ackedSeq = 0;
  flushedAckSeq = 0;
  /** A register or resume is being decided: a second one is refused meanwhile. */
  binding = false;
  /** A submit was accepted by Temporal for the bound agent. */
  submitted = false;
  /** The key of the submission the bound agent claimed (a resend with it is answered again). */
  submitKey: string | null = null;
  /** Seen since the last ping round (a packet or a pong). */
  alive = true;
  closed = false;
  /** Signals of this socket, one after the other, so the workflow sees them in the order sent. */
  signalChain: Promise<void> = Promise.resolve();

  #tokens: number;
  #refilledAt: number;
  #dropped = 0;
  #lastRateError = 0;
  readonly #onBind: ((conn: GatewayConnection) => Promise<void>) | undefined;

  /**
   * `onBind` runs on each bind; the socket's later signals wait for the promise it returns (the
   * gateway's lease on the agent, gateway/liveness.ts: written before the workflow hears of this
   * connection, so a sweeper can disconnect it if this gateway dies). It must never reject.
   */
  constructor(id: string, ws: WebSocket, limits: GatewayLimits, onBind?: (conn: GatewayConnection) => Promise<void>) {
    this.id = id;
    this.ws = ws;
    this.#tokens = limits.packetBurst;
    this.#refilledAt = Date.now();
    this.#onBind = onBind;
  }

  isHolding(): boolean {
    return this.agent !== null && isActiveAgentStatus(this.status);
  }

  bind(agent: BoundAgent, status: string, lastSeq: number): void {
    this.agent = agent;
    this.onboarding = null;
    this.status = status;
    this.sentSeq = lastSeq;
    this.ackedSeq = lastSeq;
    this.flushedAckSeq = lastSeq;
    this.submitted = status === 'completed';
    if (this.#onBind) {
      const leased = this.#onBind(this);
      this.signalChain = this.signalChain.then(() => leased);
    }
  }

  send(frame: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    // A client that stopped reading would make the gateway buffer without bound: drop it; it resumes.
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ws.terminate();
      return;
    }
    this.ws.send(frame);
  }

  /**
   * Token bucket: `packetsPerSecond` on average, bursts of `packetBurst`.
   * Returns 'ok', 'drop' (answer with rate_limited, at most once a second: 'drop-quiet' otherwise)
   * or 'close' once the socket has kept flooding past `floodCloseAfter` dropped packets.
   */
  admit(limits: GatewayLimits, now: number): 'ok' | 'drop' | 'drop-quiet' | 'close' {
    const elapsed = now - this.#refilledAt;
    if (elapsed > 0) {
      this.#tokens = Math.min(limits.packetBurst, this.#tokens + (elapsed * limits.packetsPerSecond) / 1000);
      this.#refilledAt = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      this.#dropped = 0;
      return 'ok';
    }
    this.#dropped += 1;
    if (this.#dropped > limits.floodCloseAfter) return 'close';
    if (now - this.#lastRateError >= 1000) {
      this.#lastRateError = now;
      return 'drop';
    }
    return 'drop-quiet';
  }
}
