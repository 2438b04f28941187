/**
 * A minimal client of the gateway's wire protocol (docs/protocol.md, version 1), written from the
 * protocol alone: the benchmarks and the chaos harness speak to gateways through it, exactly as a
 * task page would. Outbox messages are acknowledged as they arrive, and every seq seen is kept so
 * the harness can check that messages arrive in order, each once.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

export type ServerPacket = { v: number; type: string } & Record<string, unknown>;

export interface AgentDetails {
  agentId: string;
  runId: string;
  unitId: string;
  assignmentId: string;
  status: string;
  token: string;
  resumed: boolean;
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
  readonly packet: ServerPacket | undefined;
  constructor(message: string, packet?: ServerPacket) {
    super(message);
    this.packet = packet;
  }
}

/** The socket closed (or never opened) before the awaited packet came. */
export class SocketClosedError extends Error {
  override name = 'SocketClosedError';
}

interface Waiter {
  match: (p: ServerPacket) => boolean;
  resolve: (p: ServerPacket) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class ProtocolSocket {
  readonly ws: WebSocket;
  /** Packets not taken by a waiter, oldest first (bounded). */
  readonly unclaimed: ServerPacket[] = [];
  /** Called for every outbox message, after it has been acknowledged. */
  onMessage: ((p: ServerPacket) => void) | undefined;
  /** Called for every packet (before waiters see it). */
  onPacket: ((p: ServerPacket) => void) | undefined;
  closeCode: number | undefined;
  /** The agent's status as last told: the `agent` packet, then `status` outbox messages. */
  status = '';
  /** Every outbox seq received, in arrival order (duplicates included). */
  readonly seqs: number[] = [];
  #waiters = new Set<Waiter>();
  #closed = false;
  readonly closed: Promise<number>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        this.#closed = true;
        this.closeCode = code;
        for (const w of this.#waiters) {
          clearTimeout(w.timer);
          w.reject(new SocketClosedError(`the gateway socket closed (code ${code}) before the awaited packet`));
        }
        this.#waiters.clear();
        resolve(code);
      });
    });
    ws.on('message', (data) => this.#receive(data.toString()));
  }

  static connect(url: string, timeoutMs = 10_000): Promise<ProtocolSocket> {
    const wsUrl = `${url.replace(/^http/, 'ws').replace(/\/$/, '')}/ws`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { handshakeTimeout: timeoutMs, perMessageDeflate: false });
      const socket = new ProtocolSocket(ws);
      ws.once('open', () => resolve(socket));
      ws.once('error', (err) => reject(new SocketClosedError(`cannot connect to ${wsUrl}: ${err.message}`)));
      ws.once('unexpected-response', (_req, res) => reject(new SocketClosedError(`cannot connect to ${wsUrl}: HTTP ${res.statusCode}`)));
    });
  }

  get isOpen(): boolean {
    return !this.#closed && this.ws.readyState === WebSocket.OPEN;
  }

  send(packet: Record<string, unknown>): void {
    if (!this.isOpen) throw new SocketClosedError('the gateway socket is closed');
    this.ws.send(JSON.stringify({ v: 1, ...packet }));
  }

  /** The first packet (already received or still to come) that matches. */
  next(match: (p: ServerPacket) => boolean, timeoutMs: number, what: string): Promise<ServerPacket> {
    const index = this.unclaimed.findIndex(match);
    if (index >= 0) return Promise.resolve(this.unclaimed.splice(index, 1)[0]!);
    if (this.#closed) return Promise.reject(new SocketClosedError(`the gateway socket is closed; no ${what} will come`));
    return this.#waitFor(match, timeoutMs, what);
  }

  /** A waiter for a later packet that matches; fails after `timeoutMs`. */
  #waitFor(match: (p: ServerPacket) => boolean, timeoutMs: number, what: string): Promise<ServerPacket> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(new ProtocolError(`no ${what} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  #receive(text: string): void {
    let packet: ServerPacket;
    try {
      packet = JSON.parse(text) as ServerPacket;
    } catch {
      packet = { v: 0, type: 'unparseable', text };
    }
    if (packet.type === 'message' && typeof packet.seq === 'number' && this.isOpen) {
      this.ws.send(JSON.stringify({ v: 1, type: 'ack', seq: packet.seq }));
    }
    if (packet.type === 'agent') this.status = String(packet.status);
    if (packet.type === 'message') {
      if (typeof packet.seq === 'number') this.seqs.push(packet.seq);
      const payload = packet.payload as { status?: unknown } | null;
      if (packet.kind === 'status' && typeof payload?.status === 'string') this.status = payload.status;
    }
    this.onPacket?.(packet);
    if (packet.type === 'message') this.onMessage?.(packet);
    for (const w of this.#waiters) {
      if (w.match(packet)) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(packet);
        return;
      }
    }
    if (packet.type !== 'heartbeat') {
      this.unclaimed.push(packet);
      if (this.unclaimed.length > 100) this.unclaimed.shift();
    }
  }

  /**
   * Resolves once `condition` holds (now, or after some later packet), without taking any packet
   * from the unclaimed queue: for state the socket follows, such as the agent's status.
   */
  async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return;
    if (this.#closed) throw new SocketClosedError(`the gateway socket is closed; ${what} will not come`);
    await this.#waitFor(() => condition(), timeoutMs, what);
  }

  /** Resolves once the agent's status is `status` (already, or by a later message). */
  waitForStatus(status: string, timeoutMs: number): Promise<void> {
    return this.until(() => this.status === status, timeoutMs, `the "${status}" status`);
  }

  /** A clean close (code 1000). */
  close(): void {
    if (!this.#closed) this.ws.close(1000, 'bye');
  }

  /** An abrupt drop: no close frame, as when a network cable is pulled. */
  drop(): void {
    this.ws.terminate();
  }
}

/** Answer to `register` or `resume`: the agent, a refusal, or an error packet. */
export async function awaitAgentOrRefusal(socket: ProtocolSocket, timeoutMs: number): Promise<ServerPacket> {
  return socket.next((p) => p.type === 'agent' || p.type === 'refused' || (p.type === 'error' && (p.ref === 'register' || p.ref === 'resume')), timeoutMs, 'answer to register/resume');
}

export function agentDetailsOf(packet: ServerPacket): AgentDetails {
  return {
    agentId: String(packet.agentId),
    runId: String(packet.runId),
    unitId: String(packet.unitId),
    assignmentId: String(packet.assignmentId),
    status: String(packet.status),
    token: String(packet.token),
    resumed: packet.resumed === true,
  };
}

/** Connect, register one mock-provider worker, and return its socket and agent (throws on refusal). */
export async function registerOverGateway(
  gatewayUrl: string,
  runId: string,
  workerId: string,
  timeoutMs = 120_000,
): Promise<ProtocolSocket & { agent: AgentDetails }> {
  const socket = await ProtocolSocket.connect(gatewayUrl);
  socket.send({ type: 'register', runId, params: { worker_id: workerId }, registrationKey: randomUUID() });
  const answer = await awaitAgentOrRefusal(socket, timeoutMs);
  if (answer.type !== 'agent') {
    socket.close();
    throw new ProtocolError(`register of ${workerId} on run ${runId}: ${answer.type} ${String(answer.reason ?? answer.code)} (${String(answer.detail ?? answer.message)})`, answer);
  }
  return Object.assign(socket, { agent: agentDetailsOf(answer) });
}
