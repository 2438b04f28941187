/**
 * Every gateway watches the others' heartbeats (gateway/instanceLease.ts). When one stops beating
 * (killed, host lost), the sockets it held closed without anyone telling the workflows; a live
 * gateway then sends, for each lease it held, the `agentDisconnected` signal the dead one could not,
 * with the dead connection's id. The agent's reconnect window starts, and a resume elsewhere since
 * (a newer connection id) still wins: the assignment workflow ignores a disconnect of an older one.
 *
 * No clocks are compared across hosts: a gateway is dead when its `beat` counter has not moved for
 * `deadAfterMs` by the observer's own clock. Declaring it dead is a compare-and-set on the beat seen,
 * so a gateway that beats meanwhile is not declared. Each lease is claimed by one sweeper (an atomic
 * UPDATE) before its signal is sent and deleted after, so a dead connection is disconnected once;
 * a claim held by a sweeper that died in turn is taken over.
 */
import type { Logger } from 'pino';
import type { Database } from '../model/database.ts';
import { GatewayInstance, GatewayLease } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, type AgentStatus } from '../model/status.ts';
import { agentDisconnectedSignal } from '../workflows/definitions.ts';
import { WorkflowGoneError, type WorkflowCalls } from './workflowCalls.ts';

export interface DeadGatewaySweepOptions {
  db: Database;
  log: Logger;
  calls: Pick<WorkflowCalls, 'signalAssignment'>;
  /** This gateway's heartbeat: its row's id, and whether it may judge others right now. */
  self: { readonly incarnation: string; readonly healthy: boolean };
  intervalMs: number;
  deadAfterMs: number;
}

export interface SweepRound {
  /** Gateways this round declared dead. */
  declaredDead: string[];
  /** Disconnect signals sent for agents of dead gateways. */
  disconnected: number;
  /** Leases dropped without a signal: their agent had already ended. */
  dropped: number;
  /** Claimed leases left for the next round (Temporal did not take the signal). */
  pending: number;
}

interface ClaimedLease {
  instance: string;
  connection_id: string;
  agent_id: string;
  assignment_id: string;
  status: string | null;
}

/** Leases handled per round, and signals in flight at once. */
const LEASES_PER_ROUND = 1_000;
const SIGNALS_AT_ONCE = 16;

/**
 * Leases of dead gateways: their heartbeat row is declared dead or gone (a gateway writes its row
 * before any lease, so a lease without one outlived its gateway). A lease already claimed is
 * claimable only from a claimant that is itself dead or gone.
 */
const CLAIMABLE = `(instance IN (SELECT id FROM gateway_instance WHERE declared_dead_by IS NOT NULL)
       OR NOT EXISTS (SELECT 1 FROM gateway_instance i WHERE i.id = gateway_lease.instance))
  AND (claimed_by IS NULL
       OR claimed_by IN (SELECT id FROM gateway_instance WHERE declared_dead_by IS NOT NULL)
       OR NOT EXISTS (SELECT 1 FROM gateway_instance c WHERE c.id = gateway_lease.claimed_by))`;
/** Read first: on SQLite an UPDATE takes the database's write lock even when it changes nothing. */
const ANY_CLAIMABLE_SQL = `SELECT 1 AS found FROM gateway_lease WHERE ${CLAIMABLE} LIMIT 1`;
/** One statement, so two sweepers never both claim a lease. */
const CLAIM_SQL = `UPDATE gateway_lease SET claimed_by = ? WHERE ${CLAIMABLE}`;

const CLAIMED_SQL = `SELECT l.instance, l.connection_id, l.agent_id, l.assignment_id, a.status
FROM gateway_lease l LEFT JOIN agent a ON a.id = l.agent_id
WHERE l.claimed_by = ? ORDER BY l.instance, l.connection_id LIMIT ?`;

/** Heartbeat rows of dead gateways whose leases are all handled. */
const FORGET_DEAD_SQL = `DELETE FROM gateway_instance
WHERE declared_dead_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM gateway_lease l WHERE l.instance = gateway_instance.id)`;

export class DeadGatewaySweep {
  readonly #opts: DeadGatewaySweepOptions;
  /** Each other gateway's beat as last seen, and since when (this process's monotonic clock). */
  readonly #seen = new Map<string, { beat: number; since: number }>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(opts: DeadGatewaySweepOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#next();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  #next(): void {
    if (this.#stopped) return;
    // A timeout after each round, not an interval: rounds never overlap, however long one takes.
    this.#timer = setTimeout(() => {
      this.#round = this.sweep()
        .catch((err: unknown) => this.#opts.log.warn({ err }, 'dead-gateway sweep failed; retrying at the next interval'))
        .finally(() => this.#next());
    }, this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** One round: notice silent gateways, claim their leases, disconnect their agents. */
  async sweep(): Promise<SweepRound> {
    const round: SweepRound = { declaredDead: [], disconnected: 0, dropped: 0, pending: 0 };
    const { self } = this.#opts;
    // A gateway that cannot write its own heartbeat may be the one cut off: it judges no one.
    if (!self.healthy) return round;
    const me = self.incarnation;
    const { declared, deadRows } = await this.#declareSilentGateways(me);
    round.declaredDead = declared;
    const conn = this.#opts.db.orm.em.getConnection();
    if ((await conn.execute<unknown[]>(ANY_CLAIMABLE_SQL, [], 'all')).length > 0) await conn.execute(CLAIM_SQL, [me], 'run');
    const claimed = await conn.execute<ClaimedLease[]>(CLAIMED_SQL, [me, LEASES_PER_ROUND], 'all');
    await forEachAtMost(SIGNALS_AT_ONCE, claimed, async (lease) => {
      const outcome = await this.#disconnect(lease, me);
      round[outcome] += 1;
    });
    if (deadRows) await conn.execute(FORGET_DEAD_SQL, [], 'run');
    if (round.disconnected + round.dropped + round.pending > 0) {
      this.#opts.log.warn(
        { disconnected: round.disconnected, dropped: round.dropped, pending: round.pending, gateways: [...new Set(claimed.map((l) => l.instance))] },
        'started the reconnect windows of agents whose gateway died',
      );
    }
    return round;
  }

  /** Declares dead the gateways silent for too long; `deadRows`: some row is declared dead (now or before). */
  async #declareSilentGateways(me: string): Promise<{ declared: string[]; deadRows: boolean }> {
    const em = this.#opts.db.em();
    const rows = await em.find(GatewayInstance, {}, { fields: ['id', 'beat', 'declaredDeadBy'] });
    const now = performance.now();
    const declared: string[] = [];
    let deadRows = false;
    for (const row of rows) {
      if (row.declaredDeadBy) deadRows = true;
      if (row.id === me || row.declaredDeadBy) continue;
      const seen = this.#seen.get(row.id);
      if (!seen || seen.beat !== row.beat) {
        this.#seen.set(row.id, { beat: row.beat, since: now });
        continue;
      }
      if (now - seen.since < this.#opts.deadAfterMs) continue;
      const won = await em.nativeUpdate(
        GatewayInstance,
        { id: row.id, beat: row.beat, declaredDeadBy: null },
        { declaredDeadBy: me, declaredDeadAt: new Date() },
      );
      if (won === 1) {
        declared.push(row.id);
        this.#opts.log.warn({ gateway: row.id, silentForMs: Math.round(now - seen.since) }, 'a gateway stopped beating: declaring it dead and taking over its agents');
      }
    }
    const present = new Set(rows.map((r) => r.id));
    for (const id of this.#seen.keys()) if (!present.has(id)) this.#seen.delete(id);
    return { declared, deadRows: deadRows || declared.length > 0 };
  }

  /** The signal the dead gateway could not send; the lease goes once it is sent (or moot). */
  async #disconnect(lease: ClaimedLease, me: string): Promise<'disconnected' | 'dropped' | 'pending'> {
    let outcome: 'disconnected' | 'dropped' = 'dropped';
    if (lease.status !== null && ACTIVE_AGENT_STATUSES.includes(lease.status as AgentStatus)) {
      try {
        await this.#opts.calls.signalAssignment(lease.assignment_id, agentDisconnectedSignal, {
          agentId: lease.agent_id,
          connectionId: lease.connection_id,
        });
        outcome = 'disconnected';
      } catch (err) {
        // The assignment has ended: nothing is waiting for this agent any more.
        if (!(err instanceof WorkflowGoneError)) {
          this.#opts.log.warn({ err, agentId: lease.agent_id, connectionId: lease.connection_id }, 'could not start the reconnect window of an agent of a dead gateway; retrying next round');
          return 'pending';
        }
      }
    }
    await this.#opts.db.em().nativeDelete(GatewayLease, { instance: lease.instance, connectionId: lease.connection_id, claimedBy: me });
    return outcome;
  }
}

async function forEachAtMost<T>(limit: number, items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
