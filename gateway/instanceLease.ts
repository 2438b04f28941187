/**
 * This gateway's side of liveness: a heartbeat row (`gateway_instance`) and a lease row
 * (`gateway_lease`) per socket bound to an agent, so that if the process dies, another gateway
 * can see it stopped beating and start the reconnect windows of the agents it held
 * (gateway/deadGatewaySweep.ts).
 *
 * Writes are batched on one serial writer, off the per-packet path: a lease is written when a
 * socket binds to an agent (a `register` or `resume` answered), removed when the socket's
 * disconnect signal has been sent, and every change made meanwhile goes in the same round. The
 * socket's signals wait for its lease (see GatewayConnection.bind), so the workflow never hears of
 * a connection that no row would let a sweeper disconnect.
 *
 * Fencing: a gateway that was only slow (event loop stalled, database out of reach for longer
 * than the dead-after delay) finds its heartbeat row declared dead. It then closes the sockets of
 * the leases it had written (1001: resume), so those agents' reconnects clear the windows the
 * sweeper started, and carries on as a new incarnation.
 */
import { CoalescingPump } from './coalescingPump.ts';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../model/database.ts';
import { GatewayInstance, GatewayLease } from '../model/entities.ts';
import type { GatewayConnection } from './connection.ts';
import { CLOSE_CODES } from './protocol.ts';

export interface InstanceLeaseOptions {
  db: Database;
  log: Logger;
  /** The gateway's instance id (the prefix of its connection ids). */
  instanceId: string;
  heartbeatMs: number;
  /** Longest a socket's signals wait for its lease write; past it they go on (default 2 s). */
  leaseWaitMs?: number;
}

interface LeaseEntry {
  conn: GatewayConnection;
  agentId: string;
  assignmentId: string;
  boundAt: Date;
  /** Bumped on each (re)bind: a write only settles the version it wrote. */
  version: number;
  writtenVersion: number;
  /** The incarnation the row was last written under (null until written). */
  writtenAs: string | null;
  /** Resolved after the next write round that includes this entry. */
  waiters: Array<() => void>;
}

interface LeaseKey {
  instance: string;
  connectionId: string;
}

const DEFAULT_LEASE_WAIT_MS = 2_000;
const ROWS_PER_WRITE = 100;

export const newIncarnationId = (instanceId: string): string => `${instanceId}.${randomBytes(3).toString('hex')}`;

export class InstanceLease {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #instanceId: string;
  readonly #heartbeatMs: number;
  readonly #leaseWaitMs: number;
  readonly #entries = new Map<GatewayConnection, LeaseEntry>();
  #toDelete: LeaseKey[] = [];
  #incarnation: string;
  #beat = 0;
  #healthy = false;
  #heartbeatDue = false;
  readonly #pump: CoalescingPump;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: InstanceLeaseOptions) {
    this.#db = opts.db;
    this.#log = opts.log;
    this.#instanceId = opts.instanceId;
    this.#heartbeatMs = opts.heartbeatMs;
    this.#leaseWaitMs = opts.leaseWaitMs ?? DEFAULT_LEASE_WAIT_MS;
    this.#incarnation = newIncarnationId(opts.instanceId);
    this.#pump = new CoalescingPump({
      round: () => this.#round(),
      log: this.#log,
      failureMessage: 'gateway lease round failed; the next heartbeat retries',
    });
  }

  /** The id of this gateway's current heartbeat row. */
  get incarnation(): string {
    return this.#incarnation;
  }

  /** The last heartbeat was written and nobody had declared this gateway dead: it may judge others. */
  get healthy(): boolean {
    return this.#healthy && !this.#stopped;
  }

  async start(): Promise<void> {
    await this.#insertInstanceRow();
    this.#healthy = true;
    this.#timer = setInterval(() => {
      this.#heartbeatDue = true;
      this.#pump.request();
    }, this.#heartbeatMs);
    this.#timer.unref();
  }

  /**
   * The socket is now bound to `conn.agent`: write its lease. Resolves once written (or after the
   * lease wait, or when writing failed: it is retried at the next heartbeat); never rejects.
   */
  hold(conn: GatewayConnection): Promise<void> {
    const agent = conn.agent;
    if (!agent || this.#stopped) return Promise.resolve();
    let entry = this.#entries.get(conn);
    if (!entry) {
      entry = {
        conn,
        agentId: agent.agentId,
        assignmentId: agent.assignmentId,
        boundAt: new Date(),
        version: 0,
        writtenVersion: 0,
        writtenAs: null,
        waiters: [],
      };
      this.#entries.set(conn, entry);
    }
    entry.agentId = agent.agentId;
    entry.assignmentId = agent.assignmentId;
    entry.boundAt = new Date();
    entry.version += 1;
    const written = new Promise<void>((resolve) => entry.waiters.push(resolve));
    this.#pump.request();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#leaseWaitMs);
      timer.unref();
    });
    return Promise.race([written, waited]).finally(() => clearTimeout(timer));
  }

  /** The socket closed and its last signal (the disconnect, if any) has been sent: drop its lease. */
  release(conn: GatewayConnection): void {
    const entry = this.#entries.get(conn);
    if (!entry) return;
    this.#entries.delete(conn);
    for (const resolve of entry.waiters.splice(0)) resolve();
    if (entry.writtenAs) {
      this.#toDelete.push({ instance: entry.writtenAs, connectionId: conn.id });
      this.#pump.request();
    }
  }

  /**
   * Writes what is pending and removes this gateway's heartbeat row. Leases still held (a disconnect
   * signal that could not be sent) stay: without their row, another gateway sweeps them.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#pump.stop();
    try {
      await this.#writeRound();
      // Rows of sockets released while the first round wrote them.
      if (this.#toDelete.length > 0) await this.#writeRound();
      await this.#db.em().nativeDelete(GatewayInstance, { id: this.#incarnation });
    } catch (err) {
      // The row goes stale instead, and is swept like a crashed gateway's.
      this.#log.warn(
        { err, incarnation: this.#incarnation },
        'could not remove the gateway heartbeat row at shutdown; other gateways will sweep it',
      );
    }
  }

  async #round(): Promise<void> {
    if (this.#heartbeatDue) {
      this.#heartbeatDue = false;
      await this.#heartbeat();
    }
    await this.#writeRound();
  }

  async #heartbeat(): Promise<void> {
    const beat = this.#beat + 1;
    let updated: number;
    try {
      updated = await this.#db
        .em()
        .nativeUpdate(GatewayInstance, { id: this.#incarnation, declaredDeadBy: null }, { beat, beatAt: new Date() });
    } catch (err) {
      this.#healthy = false;
      this.#log.warn({ err, incarnation: this.#incarnation }, 'gateway heartbeat not written; other gateways may declare this one dead');
      return;
    }
    if (updated === 1) {
      this.#beat = beat;
      this.#healthy = true;
      return;
    }
    await this.#fence();
  }

  /** Declared dead while alive: hand the agents of the swept leases back to their clients. */
  async #fence(): Promise<void> {
    this.#healthy = false;
    const old = this.#incarnation;
    const row = await this.#db.em().findOne(GatewayInstance, old, { fields: ['declaredDeadBy'] });
    const fenced = [...this.#entries.values()].filter((e) => e.writtenAs === old);
    this.#log.warn(
      { incarnation: old, declaredDeadBy: row?.declaredDeadBy ?? null, sockets: fenced.length },
      'another gateway declared this one dead (its heartbeat was late): closing the sockets it held so their agents resume, and carrying on as a new incarnation',
    );
    // Their rows now belong to the sweeper, which sends their disconnects; the close sends one too.
    for (const entry of fenced) {
      this.#entries.delete(entry.conn);
      for (const resolve of entry.waiters.splice(0)) resolve();
      entry.conn.ws.close(CLOSE_CODES.goingAway, 'gateway lease lost; reconnect and resume');
    }
    this.#incarnation = newIncarnationId(this.#instanceId);
    this.#beat = 0;
    await this.#insertInstanceRow();
    this.#healthy = true;
  }

  async #insertInstanceRow(): Promise<void> {
    const now = new Date();
    await this.#db.em().insert(GatewayInstance, { id: this.#incarnation, beat: 0, startedAt: now, beatAt: now });
  }

  /** One write of every lease bound or released since the last round. */
  async #writeRound(): Promise<void> {
    const deletes = this.#toDelete;
    this.#toDelete = [];
    if (deletes.length > 0) {
      try {
        await this.#deleteLeases(deletes);
      } catch (err) {
        this.#toDelete.push(...deletes);
        this.#log.warn({ err }, 'removing gateway leases failed; retrying at the next heartbeat');
      }
    }
    const batch = [...this.#entries.values()]
      .filter((e) => e.version !== e.writtenVersion)
      .map((e) => ({ entry: e, version: e.version, waiters: e.waiters.splice(0) }));
    const incarnation = this.#incarnation;
    let releasedMeanwhile = false;
    for (let i = 0; i < batch.length; i += ROWS_PER_WRITE) {
      const chunk = batch.slice(i, i + ROWS_PER_WRITE);
      try {
        await this.#db
          .em()
          .createQueryBuilder(GatewayLease)
          .insert(
            chunk.map(({ entry }) => ({
              instance: incarnation,
              connectionId: entry.conn.id,
              agentId: entry.agentId,
              assignmentId: entry.assignmentId,
              boundAt: entry.boundAt,
            })),
          )
          .onConflict(['instance', 'connectionId'])
          .merge(['agentId', 'assignmentId', 'boundAt'])
          .execute();
        for (const { entry, version } of chunk) {
          entry.writtenAs = incarnation;
          entry.writtenVersion = Math.max(entry.writtenVersion, version);
          // Released while being written: the row just written must go too, in the next round.
          if (this.#entries.get(entry.conn) !== entry) {
            this.#toDelete.push({ instance: incarnation, connectionId: entry.conn.id });
            releasedMeanwhile = true;
          }
        }
      } catch (err) {
        this.#log.warn({ err, leases: chunk.length }, 'writing gateway leases failed; retrying at the next heartbeat');
      } finally {
        for (const { waiters } of chunk) for (const resolve of waiters) resolve();
      }
    }
    // Failed writes wait for the next heartbeat; only new work warrants another round now.
    if (releasedMeanwhile && !this.#stopped) this.#pump.request();
  }

  async #deleteLeases(keys: LeaseKey[]): Promise<void> {
    const byInstance = new Map<string, string[]>();
    for (const k of keys) byInstance.set(k.instance, [...(byInstance.get(k.instance) ?? []), k.connectionId]);
    for (const [instance, ids] of byInstance) {
      for (let i = 0; i < ids.length; i += ROWS_PER_WRITE) {
        await this.#db.em().nativeDelete(GatewayLease, { instance, connectionId: { $in: ids.slice(i, i + ROWS_PER_WRITE) } });
      }
    }
  }
}
