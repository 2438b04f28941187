/**
 * Delivers the outbox (workflow -> agent messages, see activities/outbox.ts) to the agents whose
 * sockets this gateway holds, in `seq` order, each once per socket; and records clients' acks.
 *
 * Two ways of noticing new messages, both feeding one serial pump (so deliveries never overlap):
 * - a global poll on the table's autoincrement id: one cheap indexed range scan per interval,
 *   whatever the number of connected agents. Fast on SQLite, where writers commit in id order.
 * - per-agent fetches (`seq > sentSeq`) when an agent binds, on PostgreSQL NOTIFY for one of our
 *   agents, and whenever the poll sees a gap in an agent's seqs (on PostgreSQL, ids may become
 *   visible out of order; the NOTIFY sent after commit makes up for it).
 *
 * Payloads are spliced into frames as stored JSON text; only `status` payloads are parsed, to follow
 * the agent's status. Acks are cumulative and written in batches, not per packet.
 */
import { CoalescingPump } from './coalescingPump.ts';
import type { Logger } from 'pino';
import type { Database } from '../model/database.ts';
import { OutboxMessage } from '../model/entities.ts';
import type { GatewayConnection } from './connection.ts';
import { PgNotificationListener } from './pgListener.ts';
import { encodeMessage } from './protocol.ts';

export interface OutboxDeliveryOptions {
  db: Database;
  log: Logger;
  /** Interval of the global poll (default 100 ms on SQLite, 1 s on PostgreSQL where NOTIFY is the fast path). */
  pollIntervalMs?: number;
  /** Interval at which acks are written to the database (default 1 s). */
  ackFlushMs?: number;
  /** Called when a `status` message is delivered to a socket. */
  onStatus(conn: GatewayConnection, status: string): void;
}

interface OutboxRow {
  id?: number | string;
  agent_id: string;
  seq: number | string;
  kind: string;
  payload: string;
}

const POLL_BATCH = 1_000;
const AGENTS_PER_FETCH = 100;
const FETCH_BATCH = 2_000;
const ACKS_PER_UPDATE = 100;

export class OutboxDelivery {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #pollIntervalMs: number;
  readonly #ackFlushMs: number;
  readonly #onStatus: OutboxDeliveryOptions['onStatus'];
  readonly #byAgent = new Map<string, GatewayConnection>();
  readonly #dirty = new Set<string>();
  readonly #ackDirty = new Set<GatewayConnection>();
  #cursor = 0;
  #pollDue = false;
  readonly #pump: CoalescingPump;
  #pollTimer: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #listener: PgNotificationListener | undefined;
  /** Frames sent, for the gateway's stats. */
  delivered = 0;

  constructor(opts: OutboxDeliveryOptions) {
    this.#db = opts.db;
    this.#log = opts.log;
    this.#pollIntervalMs = opts.pollIntervalMs ?? (opts.db.dialect === 'postgresql' ? 1_000 : 100);
    this.#ackFlushMs = opts.ackFlushMs ?? 1_000;
    this.#onStatus = opts.onStatus;
    this.#pump = new CoalescingPump({
      round: () => this.#round(),
      moreWork: () => this.#dirty.size > 0,
      log: this.#log,
      failureMessage: 'outbox delivery round failed; the next poll retries',
    });
  }

  async start(): Promise<void> {
    this.#cursor = await this.#maxId();
    if (this.#db.target.dialect === 'postgresql') {
      this.#listener = new PgNotificationListener({
        url: this.#db.target.url,
        log: this.#log,
        onNotify: (agentId) => {
          if (this.#byAgent.has(agentId)) this.markDirty(agentId);
        },
        // Notifications may have been missed while the listener was down: look at every agent again.
        onReconnect: () => {
          for (const agentId of this.#byAgent.keys()) this.markDirty(agentId);
        },
      });
      await this.#listener.start();
    }
    this.#pollTimer = setInterval(() => {
      this.#pollDue = true;
      this.#pump.request();
    }, this.#pollIntervalMs);
    this.#pollTimer.unref();
    this.#ackTimer = setInterval(() => void this.flushAcks(), this.#ackFlushMs);
    this.#ackTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#pollTimer);
    clearInterval(this.#ackTimer);
    await this.#pump.stop();
    await this.flushAcks();
    await this.#listener?.stop();
  }

  /** Number of agents whose sockets this gateway holds. */
  get agentCount(): number {
    return this.#byAgent.size;
  }

  connectionOf(agentId: string): GatewayConnection | undefined {
    return this.#byAgent.get(agentId);
  }

  /**
   * Deliver to `conn` from now on what follows its `sentSeq`. Returns the socket this one replaces
   * for the same agent (the caller closes it), if any.
   */
  attach(conn: GatewayConnection): GatewayConnection | undefined {
    const agentId = conn.agent!.agentId;
    const previous = this.#byAgent.get(agentId);
    this.#byAgent.set(agentId, conn);
    this.markDirty(agentId);
    return previous !== conn ? previous : undefined;
  }

  detach(conn: GatewayConnection): void {
    if (!conn.agent) return;
    if (this.#byAgent.get(conn.agent.agentId) === conn) this.#byAgent.delete(conn.agent.agentId);
    if (conn.ackedSeq > conn.flushedAckSeq) this.#ackDirty.add(conn);
  }

  noteAck(conn: GatewayConnection, seq: number): void {
    // An ack beyond what was sent acknowledges nothing more than what was sent.
    const upTo = Math.min(seq, conn.sentSeq);
    if (upTo > conn.ackedSeq) {
      conn.ackedSeq = upTo;
      this.#ackDirty.add(conn);
    }
  }

  markDirty(agentId: string): void {
    this.#dirty.add(agentId);
    this.#pump.request();
  }

  async #round(): Promise<void> {
    if (this.#dirty.size > 0) await this.#fetchDirty();
    if (this.#pollDue) {
      this.#pollDue = false;
      await this.#pollNew();
    }
  }

  /** New rows of the whole table since the cursor, for the agents held here. */
  async #pollNew(): Promise<void> {
    if (this.#byAgent.size === 0) {
      this.#cursor = Math.max(this.#cursor, await this.#maxId());
      return;
    }
    for (;;) {
      const rows = await this.#query(
        'SELECT id, agent_id, seq, kind, CAST(payload AS TEXT) AS payload FROM outbox_message WHERE id > ? ORDER BY id LIMIT ?',
        [this.#cursor, POLL_BATCH],
      );
      for (const row of rows) {
        this.#cursor = Math.max(this.#cursor, Number(row.id));
        const conn = this.#byAgent.get(row.agent_id);
        if (!conn) continue;
        const seq = Number(row.seq);
        if (seq === conn.sentSeq + 1) this.#send(conn, seq, row);
        else if (seq > conn.sentSeq + 1) this.#dirty.add(row.agent_id);
      }
      if (rows.length < POLL_BATCH) return;
    }
  }

  /** Everything after each dirty agent's cursor, in seq order. */
  async #fetchDirty(): Promise<void> {
    const agents = [...this.#dirty].filter((agentId) => this.#byAgent.has(agentId));
    this.#dirty.clear();
    for (let i = 0; i < agents.length; i += AGENTS_PER_FETCH) {
      const chunk = agents.slice(i, i + AGENTS_PER_FETCH);
      const where: string[] = [];
      const params: unknown[] = [];
      for (const agentId of chunk) {
        where.push('(agent_id = ? AND seq > ?)');
        params.push(agentId, this.#byAgent.get(agentId)?.sentSeq ?? 0);
      }
      params.push(FETCH_BATCH);
      const rows = await this.#query(
        `SELECT agent_id, seq, kind, CAST(payload AS TEXT) AS payload FROM outbox_message WHERE ${where.join(' OR ')} ORDER BY agent_id, seq LIMIT ?`,
        params,
      );
      for (const row of rows) {
        const conn = this.#byAgent.get(row.agent_id);
        const seq = Number(row.seq);
        if (conn && seq > conn.sentSeq) this.#send(conn, seq, row);
      }
      if (rows.length >= FETCH_BATCH) for (const agentId of chunk) this.#dirty.add(agentId);
    }
  }

  #send(conn: GatewayConnection, seq: number, row: OutboxRow): void {
    conn.sentSeq = seq;
    conn.send(encodeMessage(seq, row.kind, row.payload));
    this.delivered += 1;
    if (row.kind === 'status') {
      try {
        const status = (JSON.parse(row.payload) as { status?: unknown }).status;
        if (typeof status === 'string') this.#onStatus(conn, status);
      } catch (err) {
        this.#log.warn({ err, agentId: row.agent_id, seq }, 'outbox status message with an unreadable payload');
      }
    }
  }

  /** Write the acks received since the last flush: one UPDATE per batch of agents. */
  async flushAcks(): Promise<void> {
    if (this.#ackDirty.size === 0) return;
    const pending = [...this.#ackDirty];
    this.#ackDirty.clear();
    for (let i = 0; i < pending.length; i += ACKS_PER_UPDATE) {
      const chunk = pending.slice(i, i + ACKS_PER_UPDATE).filter((c) => c.agent && c.ackedSeq > c.flushedAckSeq);
      if (chunk.length === 0) continue;
      const marks = chunk.map((c) => ({ conn: c, seq: c.ackedSeq }));
      try {
        await this.#db
          .em()
          .nativeUpdate(
            OutboxMessage,
            { ackedAt: null, $or: marks.map((m) => ({ agent: m.conn.agent!.agentId, seq: { $lte: m.seq } })) },
            { ackedAt: new Date() },
          );
        for (const m of marks) m.conn.flushedAckSeq = Math.max(m.conn.flushedAckSeq, m.seq);
      } catch (err) {
        // Acks only record progress; delivery follows the client's own cursor. Try again next time.
        for (const m of marks) this.#ackDirty.add(m.conn);
        this.#log.warn({ err }, 'writing outbox acks failed; retrying at the next flush');
      }
    }
  }

  async #maxId(): Promise<number> {
    const rows = await this.#query('SELECT MAX(id) AS id FROM outbox_message', []);
    return Number(rows[0]?.id ?? 0);
  }

  async #query(sql: string, params: unknown[]): Promise<OutboxRow[]> {
    // Plain SQL on the shared connection: no entity hydration on the hot path.
    return this.#db.orm.em.getConnection().execute<OutboxRow[]>(sql, params, 'all');
  }
}
