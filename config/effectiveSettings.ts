/**
 * The effective runtime settings, key by key, with where each value comes from (environment,
 * user config file, or default): what `hitloop config list` shows. Secrets are masked on request.
 */
import { loadSettings, type Settings } from './settings.ts';
import { readUserConfig, USER_CONFIG_KEYS, type UserConfigKey } from './userConfig.ts';

export type SettingSource = 'env' | 'file' | 'default';

export interface EffectiveSetting {
  key: UserConfigKey;
  value: string | number;
  source: SettingSource;
  /** The environment variable that overrides this key. */
  envVar: string;
}

/** Must match the precedence in config/settings.ts (environment first). */
export const ENV_VARS: Readonly<Record<UserConfigKey, string>> = {
  data_dir: 'HITLOOP_DATA_DIR',
  database_url: 'HITLOOP_DATABASE_URL',
  temporal_address: 'TEMPORAL_ADDRESS',
  temporal_namespace: 'TEMPORAL_NAMESPACE',
  task_queue: 'HITLOOP_TASK_QUEUE',
  secret: 'HITLOOP_SECRET',
  gateway_port: 'HITLOOP_GATEWAY_PORT',
  gateway_url: 'HITLOOP_GATEWAY_URL',
  operator_password: 'HITLOOP_OPERATOR_PASSWORD',
  trusted_proxies: 'HITLOOP_TRUSTED_PROXIES',
  log_level: 'HITLOOP_LOG_LEVEL',
  prolific_url: 'HITLOOP_PROLIFIC_URL',
  prolific_token: 'HITLOOP_PROLIFIC_TOKEN',
  prolific_webhook_secret: 'HITLOOP_PROLIFIC_WEBHOOK_SECRET',
};

const SETTING_OF: Readonly<Record<UserConfigKey, keyof Settings>> = {
  data_dir: 'dataDir',
  database_url: 'databaseUrl',
  temporal_address: 'temporalAddress',
  temporal_namespace: 'temporalNamespace',
  task_queue: 'taskQueue',
  secret: 'secret',
  gateway_port: 'gatewayPort',
  gateway_url: 'gatewayUrl',
  operator_password: 'operatorPassword',
  trusted_proxies: 'trustedProxies',
  log_level: 'logLevel',
  prolific_url: 'prolificUrl',
  prolific_token: 'prolificToken',
  prolific_webhook_secret: 'prolificWebhookSecret',
};

export function effectiveSettings(env: NodeJS.ProcessEnv = process.env): EffectiveSetting[] {
  const user = readUserConfig(env);
  const settings = loadSettings(env, user);
  return USER_CONFIG_KEYS.map((key) => {
    const envVar = ENV_VARS[key];
    // settings.ts uses `??`: a variable set to '' still counts as set.
    const source: SettingSource = env[envVar] !== undefined ? 'env' : user[key] !== undefined ? 'file' : 'default';
    const value = settings[SETTING_OF[key]];
    return { key, value: Array.isArray(value) ? value.join(', ') || '(not set)' : (value ?? '(not set)'), source, envVar };
  });
}

/** Hide what must not end up in a terminal scrollback or a bug report: the secret and database passwords. */
export function maskSetting(key: UserConfigKey, value: string | number): string | number {
  if (key === 'secret' || key === 'prolific_token' || key === 'prolific_webhook_secret' || key === 'operator_password') return value === '' || value === '(not set)' ? value : '********';
  if (key === 'database_url' && typeof value === 'string') {
    return value.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, '$1****@');
  }
  return value;
}
