/**
 * Gateway liveness: the reconnect window holds even when the gateway that held an agent's socket
 * dies without closing it (SIGKILL, lost host). Two parts, both in every gateway:
 *
 * - gateway/instanceLease.ts: this gateway's heartbeat row, and a lease row per socket bound to an
 *   agent (written in batches, before the socket's signals; removed after its disconnect signal).
 * - gateway/deadGatewaySweep.ts: watches the other gateways' heartbeats; for one that stopped, sends
 *   the `agentDisconnected` signals it could not, once per dead connection.
 *
 *   const liveness = await startLiveness({ db, log, calls, instanceId, settings: livenessSettings() });
 *   new GatewayConnection(id, ws, limits, (conn) => liveness.hold(conn));   // bind() waits for it
 *   ws.on('close', () => { handleClose(ctx, conn); liveness.closed(conn); });
 *   await liveness.stop();
 */
import type { Logger } from 'pino';
import type { Database } from '../model/database.ts';
import type { GatewayConnection } from './connection.ts';
import { DeadGatewaySweep, type SweepRound } from './deadGatewaySweep.ts';
import { InstanceLease } from './instanceLease.ts';
import type { LivenessSettings } from './livenessSettings.ts';
import type { WorkflowCalls } from './workflowCalls.ts';

export interface LivenessOptions {
  db: Database;
  log: Logger;
  calls: Pick<WorkflowCalls, 'signalAssignment'>;
  instanceId: string;
  settings: LivenessSettings;
}

export interface Liveness {
  /** This gateway's current heartbeat row id. */
  readonly incarnation: string;
  /** The socket is bound to an agent: its lease, which the socket's next signals wait for. Never rejects. */
  hold(conn: GatewayConnection): Promise<void>;
  /** The socket closed (after handleClose): its lease goes once its signals, the disconnect among them, are sent. */
  closed(conn: GatewayConnection): void;
  /** One sweep round now (tests and diagnostics; rounds also run every heartbeat interval). */
  sweep(): Promise<SweepRound>;
  /** Stops both parts and removes this gateway's heartbeat row. */
  stop(): Promise<void>;
}

export async function startLiveness(opts: LivenessOptions): Promise<Liveness> {
  const lease = new InstanceLease({ db: opts.db, log: opts.log, instanceId: opts.instanceId, heartbeatMs: opts.settings.heartbeatMs });
  const sweeper = new DeadGatewaySweep({
    db: opts.db,
    log: opts.log,
    calls: opts.calls,
    self: lease,
    intervalMs: opts.settings.heartbeatMs,
    deadAfterMs: opts.settings.deadAfterMs,
  });
  await lease.start();
  sweeper.start();
  return {
    get incarnation() {
      return lease.incarnation;
    },
    hold: (conn) => lease.hold(conn),
    closed(conn) {
      // handleClose chained the disconnect on the socket's signals: release after it was sent. Not
      // awaited: a close handler has no one to answer, and the chain never rejects (each link catches).
      void conn.signalChain.finally(() => lease.release(conn));
    },
    sweep: () => sweeper.sweep(),
    async stop() {
      await sweeper.stop();
      await lease.stop();
    },
  };
}
