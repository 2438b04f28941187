/**
 * How often a gateway proves it is alive, and how long the others wait before treating it as dead
 * (see gateway/liveness.ts). Set per process through the environment, or per gateway in code:
 *
 *   HITLOOP_GATEWAY_HEARTBEAT_MS    heartbeat and sweep interval (default 5000)
 *   HITLOOP_GATEWAY_DEAD_AFTER_MS   a gateway whose heartbeat has not moved for this long is dead
 *                                   (default 4 heartbeats: 20000)
 *
 * A dropped agent whose gateway died gets its reconnect window at most about DEAD_AFTER + HEARTBEAT
 * after the crash, so the two bound how late past `reconnect_window_seconds` its unit is released.
 */

export interface LivenessSettings {
  heartbeatMs: number;
  deadAfterMs: number;
}

export const DEFAULT_HEARTBEAT_MS = 5_000;
/** Heartbeats a gateway may miss before it is declared dead. */
export const DEFAULT_MISSED_HEARTBEATS = 4;
const MIN_HEARTBEAT_MS = 50;
/** Below two heartbeats, one late write would get a live gateway declared dead. */
const MIN_DEAD_AFTER_HEARTBEATS = 2;

export class LivenessSettingsError extends Error {
  override name = 'LivenessSettingsError';
}

function parseMs(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new LivenessSettingsError(`${name} must be a whole number of milliseconds > 0; got '${raw}'`);
  }
  return value;
}

/** Checks a combination and fills the dead-after default; throws saying which value to change. */
export function resolveLivenessSettings(given: Partial<LivenessSettings>, source = 'the gateway options'): LivenessSettings {
  const heartbeatMs = given.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const deadAfterMs = given.deadAfterMs ?? heartbeatMs * DEFAULT_MISSED_HEARTBEATS;
  if (heartbeatMs < MIN_HEARTBEAT_MS) {
    throw new LivenessSettingsError(`the gateway heartbeat interval must be at least ${MIN_HEARTBEAT_MS} ms; ${source} set ${heartbeatMs} ms`);
  }
  if (deadAfterMs < heartbeatMs * MIN_DEAD_AFTER_HEARTBEATS) {
    throw new LivenessSettingsError(
      `a gateway may be declared dead only after at least ${MIN_DEAD_AFTER_HEARTBEATS} heartbeat intervals (${heartbeatMs * MIN_DEAD_AFTER_HEARTBEATS} ms ` +
        `with a ${heartbeatMs} ms heartbeat); ${source} set ${deadAfterMs} ms: raise HITLOOP_GATEWAY_DEAD_AFTER_MS or lower HITLOOP_GATEWAY_HEARTBEAT_MS`,
    );
  }
  return { heartbeatMs, deadAfterMs };
}

/** The values given in code win over the environment's, which win over the defaults. */
export function livenessSettings(given: Partial<LivenessSettings> = {}, env: NodeJS.ProcessEnv = process.env): LivenessSettings {
  const fromEnv = {
    heartbeatMs: parseMs('HITLOOP_GATEWAY_HEARTBEAT_MS', env.HITLOOP_GATEWAY_HEARTBEAT_MS),
    deadAfterMs: parseMs('HITLOOP_GATEWAY_DEAD_AFTER_MS', env.HITLOOP_GATEWAY_DEAD_AFTER_MS),
  };
  const usesEnv = (given.heartbeatMs === undefined && fromEnv.heartbeatMs !== undefined) || (given.deadAfterMs === undefined && fromEnv.deadAfterMs !== undefined);
  return resolveLivenessSettings(
    { heartbeatMs: given.heartbeatMs ?? fromEnv.heartbeatMs, deadAfterMs: given.deadAfterMs ?? fromEnv.deadAfterMs },
    usesEnv ? 'the environment (HITLOOP_GATEWAY_HEARTBEAT_MS / HITLOOP_GATEWAY_DEAD_AFTER_MS)' : 'the gateway options',
  );
}
