/**
 * The gateway: one HTTP server whose `/ws` path upgrades to the agents' WebSocket protocol.
 * Stateless between instances (everything durable is in Temporal and the database), so any number
 * can serve the same runs behind any load balancer, and an agent may resume on any of them.
 *
 *   const gateway = await startGateway({ settings, log, port: 3000 });
 *   gateway.url        // http://127.0.0.1:3000
 *   await gateway.close();
 */
import { randomBytes } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { startConsoleHttp } from '../api/server.ts';
import type { Settings } from '../config/settings.ts';
import { createMetrics, type HitloopMetrics } from '../observability/metrics.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { AgentBinding } from './agentBinding.ts';
import { GatewayConnection } from './connection.ts';
import { createHttpHandler, type Readiness } from './http.ts';
import { type Liveness, startLiveness } from './liveness.ts';
import { livenessSettings } from './livenessSettings.ts';
import { OutboxDelivery } from './outboxDelivery.ts';
import { type GatewayContext, handleClose, handlePacket } from './packetHandlers.ts';
import { type OriginPolicy, originPolicy } from './originPolicy.ts';
import { CLOSE_CODES, DEFAULT_LIMITS, type GatewayLimits, WEBSOCKET_PATH, encodeError, newErrorId, parseClientPacket } from './protocol.ts';
import { RunCatalog } from './runCatalog.ts';
import { TokenSigner } from './tokens.ts';
import { WorkflowCalls } from './workflowCalls.ts';
import { createProlificWebhook } from '../providers/prolific/webhook.ts';

export interface GatewayOptions {
  /** `secret` signs agent tokens and checks signed worker links; the rest says where to connect. */
  settings: Settings;
  log: Logger;
  /** An open database to share; otherwise one is opened from the settings (and closed by close()). */
  db?: Database;
  /** A Temporal client on the runs' namespace to share; otherwise one is connected from the settings. */
  client?: Client;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1; 0.0.0.0 inside a container). */
  host?: string;
  /** Names this instance in connection ids and logs (default: random). */
  instanceId?: string;
  limits?: Partial<GatewayLimits>;
  /** The gateway pings every socket this often and drops those that did not answer the last ping. */
  pingIntervalMs?: number;
  /** Outbox poll interval (see gateway/outboxDelivery.ts). */
  pollIntervalMs?: number;
  ackFlushMs?: number;
  /**
   * Heartbeat and dead-gateway sweep interval, and how long a silent gateway has before its agents'
   * reconnect windows are started by the others (gateway/liveness.ts). Default from
   * HITLOOP_GATEWAY_HEARTBEAT_MS / HITLOOP_GATEWAY_DEAD_AFTER_MS, else 5 s and 4 heartbeats.
   */
  heartbeatMs?: number;
  deadAfterMs?: number;
  /**
   * Page origins (`https://host[:port]`) whose scripts may open the WebSocket besides the gateway's
   * own; `*` allows any. Default from HITLOOP_GATEWAY_ALLOWED_ORIGINS (comma-separated), else none.
   */
  allowedOrigins?: readonly string[];
  /** Interceptors of the Temporal client the gateway connects (tracing: observability/telemetry.ts). */
  clientInterceptors?: WorkflowClientInterceptor[];
  /** Prometheus metrics to count into and serve at /metrics (default: a registry of this gateway's own). */
  metrics?: HitloopMetrics;
}

export interface GatewayStats {
  sockets: number;
  agents: number;
  packetsIn: number;
  messagesDelivered: number;
}

export interface Gateway {
  /** http://host:port */
  url: string;
  /** ws://host:port/ws */
  wsUrl: string;
  port: number;
  instanceId: string;
  stats(): GatewayStats;
  /** Closes every socket with 1001 (agents resume elsewhere), waits for their signals, stops. */
  close(): Promise<void>;
}

const DEFAULT_PING_INTERVAL_MS = 15_000;
const SHUTDOWN_WAIT_MS = 10_000;
const CANCEL_WAIT_MS = 2_000;

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log;
  const instanceId = opts.instanceId ?? `gw-${randomBytes(4).toString('hex')}`;
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const connections = new Set<GatewayConnection>();
  const inFlight = new Set<Promise<unknown>>();
  let connectionCounter = 0;
  let packetsIn = 0;
  let closing = false;

  const { settings } = opts;
  const tokens = new TokenSigner(settings.secret);
  // Checked before anything is opened: a bad value fails fast with what to change.
  const liveSettings = livenessSettings({ heartbeatMs: opts.heartbeatMs, deadAfterMs: opts.deadAfterMs });
  const db = opts.db ?? (await openDatabase(settings.databaseUrl));
  let connection: Connection | undefined;
  let client = opts.client;
  if (!client) {
    try {
      connection = await Connection.connect({ address: settings.temporalAddress, connectTimeout: '10s' });
    } catch (err) {
      if (!opts.db) await db.close();
      throw new Error(
        `the gateway cannot reach the Temporal server at ${settings.temporalAddress} (${(err as Error).message}); start one with \`hitloop dev\` or set TEMPORAL_ADDRESS`,
        { cause: err },
      );
    }
    client = new Client({ connection, namespace: settings.temporalNamespace, ...(opts.clientInterceptors ? { interceptors: { workflow: opts.clientInterceptors } } : {}) });
  }
  const closeOwned = async (): Promise<void> => {
    await connection?.close();
    if (!opts.db) await db.close();
  };

  const runs = new RunCatalog(db);
  const metrics = opts.metrics ?? createMetrics({ role: 'gateway', db });
  const calls = new WorkflowCalls(client, {
    onRetry: (what, attempt, error) => log.debug({ attempt, error }, `${what}: retrying`),
  });
  const delivery = new OutboxDelivery({
    db,
    log,
    pollIntervalMs: opts.pollIntervalMs,
    ackFlushMs: opts.ackFlushMs,
    onStatus(conn, status) {
      conn.status = status;
      if (status === 'completed') conn.submitted = true;
    },
  });
  const ctx: GatewayContext = {
    db,
    log,
    secret: settings.secret,
    settings,
    calls,
    runs,
    tokens,
    delivery,
    binding: new AgentBinding(db),
    limits,
    metrics,
    track(work) {
      inFlight.add(work);
      // Only the in-flight set waits on it (shutdown drains it); tracked work answers its own failures.
      void work.finally(() => inFlight.delete(work));
    },
  };
  try {
    await delivery.start();
  } catch (err) {
    await closeOwned();
    throw new Error(`the gateway cannot follow the outbox in the database: ${(err as Error).message}`, { cause: err });
  }
  let liveness: Liveness;
  try {
    liveness = await startLiveness({ db, log, calls, instanceId, settings: liveSettings });
  } catch (err) {
    await delivery.stop();
    await closeOwned();
    throw new Error(
      `the gateway cannot write its heartbeat to the database (${(err as Error).message}); check that its migrations are applied (node model/migrate.ts up)`,
      { cause: err },
    );
  }

  const dependencies = cachedReadiness(async () => {
    try {
      await db.orm.em.getConnection().execute('SELECT 1', [], 'all');
    } catch (err) {
      // The probe's answer is public: the details go to the log only.
      log.warn({ err }, 'readiness: the database does not answer');
      return 'the database does not answer (see the gateway log)';
    }
    try {
      await calls.ping();
    } catch (err) {
      log.warn({ err }, 'readiness: Temporal does not answer');
      return 'Temporal does not answer (see the gateway log)';
    }
    return null;
  });
  const readiness: Readiness = { check: async () => (closing ? 'the gateway is shutting down' : dependencies.check()) };

  const origins: OriginPolicy = originPolicy(opts.allowedOrigins);
  // The operator console and its API (api/server.ts): refused to everyone until an operator password is set.
  const consoleHttp = await startConsoleHttp({ settings, client, db, log });
  const server: Server = createServer(
    createHttpHandler({
      runs,
      readiness,
      log,
      console: consoleHttp,
      secret: settings.secret,
      webhooks: { prolific: createProlificWebhook({ db, calls, log, settings }) },
      metrics: metrics.registry,
    }),
  );
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false });

  server.on('upgrade', (req, socket, head) => {
    const pathname = (req.url ?? '').split('?', 1)[0];
    if (pathname !== WEBSOCKET_PATH || closing) {
      socket.end(closing ? 'HTTP/1.1 503 Service Unavailable\r\n\r\n' : 'HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    if (!origins.allows(req)) {
      log.info({ origin: req.headers.origin }, 'WebSocket from a page of another origin refused');
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nthis page origin may not connect to the gateway\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws));
  });

  function accept(ws: WebSocket): void {
    const conn = new GatewayConnection(`${instanceId}-${++connectionCounter}`, ws, limits, (bound) => liveness.hold(bound));
    connections.add(conn);
    ws.on('message', (data, isBinary) => onFrame(conn, data, isBinary));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (err) => log.debug({ err, connection: conn.id }, 'socket error'));
    ws.on('close', () => {
      connections.delete(conn);
      handleClose(ctx, conn);
      liveness.closed(conn);
    });
  }

  function onFrame(conn: GatewayConnection, data: RawData, isBinary: boolean): void {
    packetsIn += 1;
    conn.alive = true;
    const verdict = conn.admit(limits, Date.now());
    if (verdict !== 'ok') {
      if (verdict === 'close') conn.ws.close(CLOSE_CODES.flood, 'too many packets');
      else if (verdict === 'drop') {
        conn.send(encodeError('rate_limited', `too many packets: at most ${limits.packetsPerSecond} per second (bursts of ${limits.packetBurst}); this one was dropped`));
      }
      return;
    }
    if (isBinary) {
      conn.send(encodeError('bad_packet', 'frames must be text (one JSON packet each), not binary'));
      return;
    }
    const parsed = parseClientPacket(data.toString());
    if (!parsed.ok) {
      conn.send(encodeError(parsed.code, parsed.message, { ...(parsed.ref ? { ref: parsed.ref } : {}), ...(parsed.id ? { id: parsed.id } : {}) }));
      return;
    }
    handlePacket(ctx, conn, parsed.packet).catch((err: unknown) => {
      const errorId = newErrorId();
      log.error({ err, errorId, connection: conn.id }, 'packet handler failed');
      conn.send(encodeError('internal', `the gateway failed to handle this packet; retry, and report error ${errorId} if it keeps failing`, { errorId }));
    });
  }

  // One timer for all sockets: a socket silent for a whole interval (no pong, no packet) is dropped.
  const pinger = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }, opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
  pinger.unref();
  // A resume or register on another gateway took an agent of ours: close our stale socket (4001).
  const staleSweep = setInterval(() => void closeRebound(ctx, connections), liveSettings.heartbeatMs);
  staleSweep.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(pinger);
    await liveness.stop();
    await delivery.stop();
    await closeOwned();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`port ${opts.port} is already in use; choose another gateway port (--port or HITLOOP_GATEWAY_PORT)`, { cause: err });
    }
    throw err;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url, instanceId }, 'gateway listening');

  return {
    url,
    wsUrl: `ws://${host}:${address.port}${WEBSOCKET_PATH}`,
    port: address.port,
    instanceId,
    stats: () => ({ sockets: connections.size, agents: delivery.agentCount, packetsIn, messagesDelivered: delivery.delivered }),
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(pinger);
      clearInterval(staleSweep);
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const socketsClosed = [...connections].map(
        (conn) =>
          new Promise<void>((resolve) => {
            if (conn.closed) return resolve();
            conn.ws.once('close', () => resolve());
            conn.ws.close(CLOSE_CODES.goingAway, 'gateway shutting down; reconnect and resume');
            setTimeout(() => {
              conn.ws.terminate();
              resolve();
            }, 2_000).unref();
          }),
      );
      await Promise.all(socketsClosed);
      // The disconnect signals of the sockets just closed, and any other signal still on its way.
      await Promise.race([Promise.allSettled([...inFlight]), sleep(SHUTDOWN_WAIT_MS)]);
      // What still waits on Temporal (a registration under load) is cancelled before its connection closes.
      calls.stop();
      await Promise.race([Promise.allSettled([...inFlight]), sleep(CANCEL_WAIT_MS)]);
      await liveness.stop();
      await delivery.stop();
      server.closeAllConnections();
      await serverClosed;
      await closeOwned();
      log.info({ instanceId }, 'gateway stopped');
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Close the sockets whose agent is now bound to a connection elsewhere (the newest binding wins). */
async function closeRebound(ctx: GatewayContext, connections: ReadonlySet<GatewayConnection>): Promise<void> {
  const held = new Map<string, GatewayConnection>();
  for (const conn of connections) if (conn.agent && conn.isHolding() && !conn.binding) held.set(conn.agent.agentId, conn);
  try {
    const bindings = new Map([...held].map(([agentId, conn]) => [agentId, conn.id]));
    for (const agentId of await ctx.binding.rebound(bindings)) {
      // The close code tells the client (4001: open elsewhere, do not take it back).
      held.get(agentId)!.ws.close(CLOSE_CODES.replaced, 'another connection took over this agent');
    }
  } catch (err) {
    ctx.log.warn({ err }, 'checking for agents taken over elsewhere failed; the next round retries');
  }
}

/** Readiness answered from a cache for a second: probes cannot hammer the database. */
function cachedReadiness(check: () => Promise<string | null>): Readiness {
  let last: { at: number; result: Promise<string | null> } | undefined;
  return {
    check() {
      const now = Date.now();
      if (!last || now - last.at > 1_000) last = { at: now, result: check() };
      return last.result;
    },
  };
}
