/**
 * The user's own config file: `${XDG_CONFIG_HOME:-~/.config}/hitloop/config.yaml`, or
 * `$HITLOOP_CONFIG_FILE`. It holds the settings of config/settings.ts that a user sets once
 * (database, Temporal address, secret). It may hold a secret and a database password, so it is
 * written with mode 0600, atomically (temp file + rename), and comments in it are kept.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { isAddressOrNetwork } from './addresses.ts';
import { z } from 'zod';
import { parseYamlDocument } from './yamlDocument.ts';
import { ConfigError } from './errors.ts';
import { configErrorFromZod, explain, unknownKeyMessage } from './zodIssues.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const text = (what: string) => z.string(explain(`must be ${what}`)).trim().min(1, explain(`must be ${what} (not empty)`));

export const userConfigSchema = z.strictObject(
  {
    data_dir: text('a directory path').optional(),
    database_url: text('a database URL')
      .regex(/^(sqlite:|postgres(ql)?:\/\/)/, explain('must be a database URL: sqlite:///abs/path.db, sqlite::memory: or postgresql://user:pass@host:port/db'))
      .optional(),
    temporal_address: text('host:port')
      .regex(/^[^\s:/]+:\d{1,5}$/, explain('must be host:port of the Temporal frontend, e.g. 127.0.0.1:7233'))
      .optional(),
    temporal_namespace: text('a Temporal namespace').optional(),
    task_queue: text('a task queue name').optional(),
    secret: z
      .string(explain('must be a string of at least 16 characters'))
      .min(16, explain('must be at least 16 characters (e.g. the output of `openssl rand -hex 32`)'))
      .optional(),
    gateway_port: z.int(explain('must be a port number 1..65535')).min(1, explain('must be a port number 1..65535')).max(65535, explain('must be a port number 1..65535')).optional(),
    gateway_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://tasks.example.org' })
      .optional(),
    operator_password: z
      .string(explain('must be a string of at least 12 characters'))
      .min(12, explain('must be at least 12 characters (e.g. the output of `openssl rand -hex 16`)'))
      .optional(),
    trusted_proxies: z
      .union([z.array(z.string()), z.string()], explain('must be IP addresses or networks: a list, or comma-separated (e.g. 127.0.0.1, 172.16.0.0/12)'))
      .transform((value, ctx) => {
        const list = Array.isArray(value) ? value.join(',') : value;
        const wrong = list.split(',').map((a) => a.trim()).find((a) => a !== '' && !isAddressOrNetwork(a));
        if (wrong !== undefined) ctx.addIssue({ code: 'custom', message: `"${wrong}" is not an IP address or network; list the proxies' addresses (e.g. 127.0.0.1 or 172.16.0.0/12)` });
        return list.split(',').map((a) => a.trim()).filter((a) => a !== '');
      })
      .optional(),
    log_level: z.enum(LOG_LEVELS, explain(`must be one of ${LOG_LEVELS.join(', ')}`)).optional(),
    prolific_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://api.prolific.com' }).optional(),
    prolific_token: text('a Prolific API token').optional(),
    prolific_webhook_secret: text("the workspace's Prolific webhook secret").optional(),
  },
  explain('must be a mapping of settings (database_url: ..., secret: ...)'),
);

export type UserConfig = z.output<typeof userConfigSchema>;
export type UserConfigKey = keyof UserConfig;
export const USER_CONFIG_KEYS = Object.keys(userConfigSchema.shape) as UserConfigKey[];

export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HITLOOP_CONFIG_FILE) return path.resolve(env.HITLOOP_CONFIG_FILE);
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(configHome, 'hitloop', 'config.yaml');
}

export function isUserConfigKey(key: string): key is UserConfigKey {
  return (USER_CONFIG_KEYS as string[]).includes(key);
}

/** The user config; `{}` when the file does not exist. Throws ConfigError (naming the file) when it is bad. */
export function readUserConfig(env: NodeJS.ProcessEnv = process.env): UserConfig {
  const file = userConfigPath(env);
  const doc = readDocument(file);
  if (doc === undefined) return {};
  const content: unknown = doc.toJS() ?? {};
  const result = userConfigSchema.safeParse(content);
  if (!result.success) throw configErrorFromZod(result.error, content, userConfigSchema, file);
  return result.data;
}

/** The keys set in the file, in the order of USER_CONFIG_KEYS. */
export function listUserConfig(env: NodeJS.ProcessEnv = process.env): { key: UserConfigKey; value: UserConfig[UserConfigKey] }[] {
  const config = readUserConfig(env);
  return USER_CONFIG_KEYS.filter((key) => config[key] !== undefined).map((key) => ({ key, value: config[key] }));
}

/**
 * Set one key in the file (created if missing). `value` is text as typed on a command line;
 * numbers are parsed for numeric keys, `data_dir` is made absolute. Returns the value stored.
 */
export function setUserConfigValue(key: string, value: string | number, env: NodeJS.ProcessEnv = process.env): UserConfig[UserConfigKey] {
  const file = userConfigPath(env);
  const known = requireKnownKey(key, file);
  const coerced = coerce(known, value, env);
  const fieldSchema = userConfigSchema.shape[known];
  const checked = fieldSchema.safeParse(coerced);
  if (!checked.success) {
    throw configErrorFromZod(checked.error, coerced, fieldSchema, file, { prefix: [known] });
  }
  const doc = readDocument(file) ?? new YAML.Document({});
  doc.set(known, checked.data);
  writeDocument(file, doc);
  return checked.data;
}

/** Remove one key from the file. Returns whether it was set. An unknown key still present in the file may be removed. */
export function unsetUserConfigValue(key: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const file = userConfigPath(env);
  const doc = readDocument(file);
  const present = doc?.has(key) ?? false;
  if (!present) {
    requireKnownKey(key, file);
    return false;
  }
  doc!.delete(key);
  writeDocument(file, doc!);
  return true;
}

// ---------------------------------------------------------------- helpers

function requireKnownKey(key: string, file: string): UserConfigKey {
  if (isUserConfigKey(key)) return key;
  throw ConfigError.single(key, unknownKeyMessage(key, USER_CONFIG_KEYS), file);
}

function coerce(key: UserConfigKey, value: string | number, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'number') return value;
  const trimmed = value.trim();
  if (key === 'gateway_port') return /^\d+$/.test(trimmed) ? Number(trimmed) : value;
  if (key === 'data_dir' && trimmed !== '') {
    // The file is read from any working directory: store an absolute path, `~` expanded.
    const expanded = trimmed === '~' || trimmed.startsWith('~/') ? path.join(env.HOME || os.homedir(), trimmed.slice(1)) : trimmed;
    return path.resolve(expanded);
  }
  return value;
}

function readDocument(file: string): YAML.Document | undefined {
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ConfigError.single('', `cannot read the user config file: ${(error as Error).message}`, file);
  }
  const { doc } = parseYamlDocument(source, file);
  const contents = doc.contents;
  if (contents !== null && !YAML.isMap(contents)) {
    throw ConfigError.single('', 'the file must hold a mapping of settings (database_url: ..., secret: ...)', file);
  }
  return doc;
}

const HEADER = ' hitloop user configuration; edit with `hitloop config set <key> <value>`.\n It may hold secrets: keep it private (mode 0600).';

function writeDocument(file: string, doc: YAML.Document): void {
  if (doc.commentBefore == null) doc.commentBefore = HEADER;
  writeFileAtomically(file, doc.toString());
}

/** Write to a temp file in the same directory, flush it, then rename over the target: never a half-written file. */
function writeFileAtomically(file: string, content: string): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(temp, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, content);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // The mode given to open is reduced by the umask; the file must end up private regardless.
    fs.chmodSync(temp, 0o600);
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw ConfigError.single('', `cannot write the user config file: ${(error as Error).message}`, file);
  }
}
