/**
 * One simulated worker's socket to a gateway, speaking the protocol of docs/protocol.md.
 *
 * Outbox messages are handled here as any client must: duplicates (seq not above the last one)
 * are dropped, the agent's status is followed, live updates are collected, and acks are sent,
 * cumulatively, shortly after. Every other packet waits in a queue for `expect` to take it.
 */
import WebSocket from 'ws';
import type { ServerPacket } from '../gateway/protocol.ts';

export class ConnectionLost extends Error {
  readonly code: number;
  constructor(code: number, reason: string) {
    super(`connection to the gateway lost (close code ${code}${reason ? `: ${reason}` : ''})`);
    this.name = 'ConnectionLost';
    this.code = code;
  }
}

export class WaitTimeout extends Error {
  override name = 'WaitTimeout';
}

export interface LiveReceived {
  seq: number;
  from: string;
  data: Record<string, unknown>;
}

type Waiter = { check(): boolean; fail(err: Error): void };

const ACK_DELAY_MS = 50;

export class AgentConnection {
  readonly ws: WebSocket;
  /** Highest outbox seq processed. */
  lastSeq = 0;
  /** Agent status as last told (agent packet or status message). */
  status = '';
  /** Payload of the last status message (e.g. the reason of submit_refused). */
  statusPayload: Record<string, unknown> = {};
  readonly lives: LiveReceived[] = [];
  /** Every outbox seq received, duplicates included (tests check exactly-once delivery with it). */
  readonly seqsReceived: number[] = [];
  /** The cursor the next `agent` packet starts from: 0 for a register, the client's for a resume. */
  #nextAgentSeq = 0;
  #queue: ServerPacket[] = [];
  #waiters = new Set<Waiter>();
  #closed: ConnectionLost | null = null;
  #ackTimer: NodeJS.Timeout | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => this.#receive(String(data)));
    ws.on('close', (code, reason) => {
      clearTimeout(this.#ackTimer);
      this.#closed = new ConnectionLost(code, reason.toString());
      for (const w of [...this.#waiters]) w.fail(this.#closed);
    });
    ws.on('error', () => {
      // 'close' follows and carries the outcome.
    });
  }

  /** `answerPings: false` plays a client whose network died silently (tests of the gateway's liveness). */
  static open(url: string, opts: { timeoutMs?: number; answerPings?: boolean } = {}): Promise<AgentConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: opts.timeoutMs ?? 10_000, autoPong: opts.answerPings ?? true });
      const conn = new AgentConnection(ws);
      ws.once('open', () => resolve(conn));
      ws.once('close', (code, reason) => reject(new ConnectionLost(code, reason.toString())));
      ws.once('error', (err) => reject(new ConnectionLost(1006, err.message)));
    });
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  send(packet: Record<string, unknown>): void {
    if (this.#closed) throw this.#closed;
    this.ws.send(JSON.stringify({ v: 1, ...packet }));
  }

  /** Ask for a unit; outbox seqs start again from 0 for the agent this may bring. */
  register(runId: string, params: Record<string, string>, registrationKey: string): void {
    this.#nextAgentSeq = 0;
    this.send({ type: 'register', runId, params, registrationKey });
  }

  /** Resume an agent, receiving what follows `lastSeq`. */
  resume(runId: string, agentId: string, token: string, lastSeq: number): void {
    this.#nextAgentSeq = lastSeq;
    this.send({ type: 'resume', runId, agentId, token, lastSeq });
  }

  sendRaw(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** Take the first queued (or next) non-message packet that matches. */
  expect<T extends ServerPacket = ServerPacket>(match: (p: ServerPacket) => boolean, timeoutMs = 60_000, what = 'a packet'): Promise<T> {
    let found: ServerPacket | undefined;
    return this.#wait(() => {
      const i = this.#queue.findIndex(match);
      if (i < 0) return false;
      found = this.#queue.splice(i, 1)[0];
      return true;
    }, timeoutMs, what).then(() => found as T);
  }

  /** Resolves once `condition` holds (checked after every packet). */
  until(condition: () => boolean, timeoutMs = 60_000, what = 'a condition'): Promise<void> {
    return this.#wait(condition, timeoutMs, what);
  }

  /** Packets received and not taken by `expect` (tests look for unexpected ones). */
  queued(): readonly ServerPacket[] {
    return this.#queue;
  }

  close(): void {
    this.ws.close(1000, 'done');
  }

  /** Drop the TCP connection without a close handshake, as a crashed browser would. */
  drop(): void {
    this.ws.terminate();
  }

  #wait(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new WaitTimeout(`no ${what} within ${timeoutMs} ms (status ${this.status || 'unknown'}, queued: ${this.#queue.map((p) => p.type).join(', ') || 'none'})`));
      }, timeoutMs);
      const waiter: Waiter = {
        check: () => {
          if (!check()) return false;
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve();
          return true;
        },
        fail: (err) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          reject(err);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  #receive(text: string): void {
    let packet: ServerPacket;
    try {
      packet = JSON.parse(text) as ServerPacket;
    } catch {
      // Not this protocol: ignored, as docs/protocol.md asks of clients for what they do not know.
      return;
    }
    if (packet.type === 'heartbeat') return;
    if (packet.type === 'message') {
      this.seqsReceived.push(packet.seq);
      if (packet.seq <= this.lastSeq) return;
      this.lastSeq = packet.seq;
      const payload = (packet.payload ?? {}) as Record<string, unknown>;
      if (packet.kind === 'status' && typeof payload.status === 'string') {
        this.status = payload.status;
        this.statusPayload = payload;
      } else if (packet.kind === 'live') {
        this.lives.push({ seq: packet.seq, from: String(payload.from), data: (payload.data ?? {}) as Record<string, unknown> });
      }
      this.#scheduleAck();
    } else {
      if (packet.type === 'agent') {
        // Messages after an agent packet are that agent's, numbered from its own cursor.
        this.status = packet.status;
        this.lastSeq = this.#nextAgentSeq;
      }
      this.#queue.push(packet);
    }
    for (const w of [...this.#waiters]) w.check();
  }

  #scheduleAck(): void {
    if (this.#ackTimer) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      if (!this.#closed) this.ws.send(JSON.stringify({ v: 1, type: 'ack', seq: this.lastSeq }));
    }, ACK_DELAY_MS);
  }
}
