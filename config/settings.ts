/**
 * Runtime settings of a hitloop process (not of a task run): where the database, the Temporal
 * server and the data directory are. Precedence: environment > user config file > defaults.
 */
import os from 'node:os';
import path from 'node:path';
import { parseTrustedProxies } from './addresses.ts';
import { readUserConfig, type UserConfig } from './userConfig.ts';

export interface Settings {
  /** Project data directory: SQLite file, Temporal dev-server database, logs. */
  dataDir: string;
  /** `sqlite:///abs/path.db`, `sqlite::memory:`, or `postgresql://user:pass@host:port/db`. */
  databaseUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  taskQueue: string;
  /** HMAC secret for agent tokens and signed worker links. */
  secret: string;
  gatewayPort: number;
  /** Public base URL of the gateway, as workers reach it (links, provider task URLs). */
  gatewayUrl: string;
  logLevel: string;
  /** Prolific's API base URL (the local fake's in tests); see providers/prolific/settings.ts. */
  prolificUrl?: string;
  /** Secret: never logged, never stored. */
  prolificToken?: string;
  /** Secret: checks the signatures of Prolific's webhooks. */
  prolificWebhookSecret?: string;
  /** Password (or token) of the operator console and API (api/auth.ts); unset: they refuse everyone. */
  operatorPassword?: string;
  /**
   * Addresses of the reverse proxies in front of the gateway (`hitloop stack`'s HAProxy): from these
   * peers the client's address is read from `X-Forwarded-For` (api/loginLimits.ts). Empty: never.
   */
  trustedProxies?: string[];
}

export const DEFAULT_TASK_QUEUE = 'hitloop';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'hitloop');
}

export function sqliteUrlFor(file: string): string {
  return `sqlite://${path.resolve(file)}`;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env, user: UserConfig = readUserConfig(env)): Settings {
  const dataDir = path.resolve(env.HITLOOP_DATA_DIR ?? user.data_dir ?? defaultDataDir(env));
  const gatewayPort = Number(env.HITLOOP_GATEWAY_PORT ?? user.gateway_port ?? 3000);
  return {
    dataDir,
    databaseUrl: env.HITLOOP_DATABASE_URL ?? user.database_url ?? sqliteUrlFor(path.join(dataDir, 'hitloop.db')),
    temporalAddress: env.TEMPORAL_ADDRESS ?? user.temporal_address ?? '127.0.0.1:7233',
    temporalNamespace: env.TEMPORAL_NAMESPACE ?? user.temporal_namespace ?? 'default',
    taskQueue: env.HITLOOP_TASK_QUEUE ?? user.task_queue ?? DEFAULT_TASK_QUEUE,
    secret: env.HITLOOP_SECRET ?? user.secret ?? 'hitloop-dev-secret-change-me',
    gatewayPort,
    gatewayUrl: env.HITLOOP_GATEWAY_URL ?? user.gateway_url ?? `http://127.0.0.1:${gatewayPort}`,
    logLevel: env.HITLOOP_LOG_LEVEL ?? user.log_level ?? 'info',
    prolificUrl: env.HITLOOP_PROLIFIC_URL ?? user.prolific_url ?? 'https://api.prolific.com',
    prolificToken: env.HITLOOP_PROLIFIC_TOKEN ?? user.prolific_token,
    prolificWebhookSecret: env.HITLOOP_PROLIFIC_WEBHOOK_SECRET ?? user.prolific_webhook_secret,
    operatorPassword: env.HITLOOP_OPERATOR_PASSWORD ?? user.operator_password,
    trustedProxies: env.HITLOOP_TRUSTED_PROXIES !== undefined ? parseTrustedProxies(env.HITLOOP_TRUSTED_PROXIES, 'HITLOOP_TRUSTED_PROXIES') : (user.trusted_proxies ?? []),
  };
}
