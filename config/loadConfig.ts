/**
 * Loading a task-run config: YAML file -> `key=value` overrides from the command line -> data paths
 * made absolute -> validation. Every problem surfaces as one ConfigError that lists them all.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { checkDataFiles } from './dataSource.ts';
import { parseYamlDocument } from './yamlDocument.ts';
import { ConfigError, showValue, type ConfigIssue } from './errors.ts';
import { taskRunConfigSchema, type TaskRunConfig } from './taskRunConfig.ts';
import { configErrorFromZod, type IssueOptions } from './zodIssues.ts';

type Locate = NonNullable<IssueOptions['locate']>;

/** Validate an already-loaded config object (e.g. a workflow input). Pure: touches no file. */
export function parseTaskRunConfig(raw: unknown, where?: string): TaskRunConfig {
  return validate(raw, where);
}

function validate(raw: unknown, where: string | undefined, locate?: Locate): TaskRunConfig {
  const result = taskRunConfigSchema.safeParse(raw);
  if (!result.success) throw configErrorFromZod(result.error, raw, taskRunConfigSchema, where, { locate });
  return result.data;
}

/**
 * Read, override, resolve and validate a task-run config file. Also checks that the data files it
 * names can be read, so a typo in a path fails here and not minutes into a run.
 */
export function loadTaskRunConfig(file: string, overrides: readonly string[] = []): TaskRunConfig {
  const loaded = loadRawTaskRunConfig(file, overrides);
  const config = validate(loaded.raw, file, loaded.locate);
  checkDataFiles(config, file);
  return config;
}

export interface RawTaskRunConfig {
  /** The document after overrides, with data paths absolute; not yet validated. */
  raw: Record<string, unknown>;
  /** Source line of a key path, for keys that came from the file (not from an override). */
  locate: Locate;
}

/** The unvalidated config object of a file with overrides applied (for validators that add their own checks). */
export function loadRawTaskRunConfig(file: string, overrides: readonly string[] = []): RawTaskRunConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw ConfigError.single('', `cannot read the config file ${path.resolve(file)}: ${(error as Error).message}`, file);
  }
  const { doc, lineCounter } = parseYamlDocument(text, file);
  const content: unknown = doc.toJS();
  if (!isPlainObject(content)) {
    throw ConfigError.single(
      '',
      `the file must hold a mapping of settings (task_name: ..., task_reward: ...), not ${content === null ? 'nothing' : showValue(content)}`,
      file,
    );
  }
  resolveDataPaths(content, path.dirname(path.resolve(file)));
  const overridden = applyOverrides(content, overrides, file);
  // Paths given on the command line are relative to where the command runs, like any shell argument.
  resolveDataPaths(content, process.cwd(), (at) => overridden.some((o) => startsWith(at, o) || startsWith(o, at)));

  const locate: Locate = (at) => {
    if (overridden.some((o) => startsWith(at, o))) return undefined;
    const node = doc.getIn(at as PropertyKey[], true) as { range?: [number, number, number] } | undefined;
    return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  };
  return { raw: content, locate };
}

// ---------------------------------------------------------------- data paths

/**
 * Where file paths may appear in a config: the assignments, screening inputs and gold items, and a
 * blueprint's HTML template; all resolved the same way.
 */
const DATA_PATHS: readonly (readonly string[])[] = [['data'], ['screening', 'data'], ['gold', 'data'], ['blueprint', 'template']];

function resolveDataPaths(
  config: Record<string, unknown>,
  base: string,
  only: (at: readonly PropertyKey[]) => boolean = () => true,
): void {
  for (const at of DATA_PATHS) {
    const parent = getPath(config, at.slice(0, -1));
    const key = at[at.length - 1] as string;
    if (!isPlainObject(parent)) continue;
    const data = parent[key];
    if (typeof data === 'string' && data.trim() !== '' && only(at)) {
      parent[key] = path.resolve(base, data.trim());
    } else if (isPlainObject(data) && typeof data.file === 'string' && data.file.trim() !== '' && only([...at, 'file'])) {
      data.file = path.resolve(base, data.file.trim());
    }
  }
}

// ---------------------------------------------------------------- overrides

/**
 * Apply `key=value` overrides in order; returns the key paths they set. Keys are dotted
 * (`blueprint.fields.0.label`, `qualifications[0].value` also works); values are YAML scalars or
 * flow collections (`3`, `true`, `[a, b]`, `{x: 1}`).
 */
export function applyOverrides(
  config: Record<string, unknown>,
  overrides: readonly string[],
  where?: string,
): (string | number)[][] {
  const issues: ConfigIssue[] = [];
  const paths: (string | number)[][] = [];
  for (const override of overrides) {
    const eq = override.indexOf('=');
    if (eq <= 0) {
      issues.push({
        path: '',
        message: `override ${JSON.stringify(override)} must look like key=value (e.g. task_reward=0.5 or blueprint.fields.0.label=Name)`,
      });
      continue;
    }
    const key = override.slice(0, eq).trim();
    try {
      const segments = parseKeyPath(key);
      setPath(config, segments, parseOverrideValue(override.slice(eq + 1)), key);
      paths.push(segments);
    } catch (error) {
      if (!(error instanceof OverrideError)) throw error;
      issues.push({ path: key, message: error.message });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, where === undefined ? 'overrides' : `${where} (overrides)`);
  return paths;
}

class OverrideError extends Error {}

/** `blueprint.fields.0.label` / `qualifications[0].value` -> segments; digit-only segments are numbers. */
export function parseKeyPath(key: string): (string | number)[] {
  const segments: (string | number)[] = [];
  for (const part of key.replace(/\[(\d+)\]/g, '.$1').split('.')) {
    if (part === '') throw new OverrideError(`bad key path (empty part in ${JSON.stringify(key)})`);
    segments.push(/^\d+$/.test(part) ? Number(part) : part);
  }
  return segments;
}

/** Parse an override value as YAML, but never turn free text into something else by accident. */
export function parseOverrideValue(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  let parsed: unknown;
  try {
    parsed = YAML.parse(trimmed, { logLevel: 'error' });
  } catch (error) {
    if (/^[[{]/.test(trimmed)) throw new OverrideError(`value ${trimmed} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
    return text;
  }
  // `#3 priority` is a YAML comment and `Note: read first` a mapping: both meant as text.
  if (parsed === null && !/^(null|Null|NULL|~)$/.test(trimmed)) return text;
  if (isPlainObject(parsed) && !trimmed.startsWith('{')) return text;
  return parsed;
}

function setPath(root: Record<string, unknown>, segments: (string | number)[], value: unknown, key: string): void {
  let container: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string | number;
    const isLast = i === segments.length - 1;
    const where = segments.slice(0, i).join('.') || 'the config';
    let slot: string | number = segment;
    if (Array.isArray(container)) {
      if (typeof segment !== 'number') throw new OverrideError(`${where} is a list: use a number (0, 1, ...) after it, not "${segment}"`);
      if (segment > container.length) {
        throw new OverrideError(`index ${segment} is past the end of ${where} (${container.length} items; ${container.length} appends)`);
      }
    } else {
      slot = String(segment);
    }
    const holder = container as Record<string | number, unknown>;
    if (isLast) {
      holder[slot] = value;
      return;
    }
    let next = holder[slot];
    if (next === undefined || next === null) {
      next = typeof segments[i + 1] === 'number' ? [] : {};
      holder[slot] = next;
    } else if (typeof next === 'string' && i === 0 && (segment === 'provider' || segment === 'blueprint')) {
      // `provider: mock` plus `provider.x=1`: the shorthand becomes `{ type: mock, x: 1 }`.
      next = { type: next };
      holder[slot] = next;
    } else if (typeof next === 'string' && i === 0 && segment === 'data') {
      // `data: items.csv` plus `data.format=csv`: the shorthand becomes `{ file: items.csv, format: csv }`.
      next = { file: next };
      holder[slot] = next;
    } else if (typeof next !== 'object') {
      throw new OverrideError(`cannot set ${key}: ${segments.slice(0, i + 1).join('.')} is ${showValue(next)}, not a mapping or list`);
    }
    container = next as Record<string, unknown> | unknown[];
  }
}

// ---------------------------------------------------------------- helpers

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function getPath(root: unknown, segments: readonly PropertyKey[]): unknown {
  let current = root;
  for (const segment of segments) {
    if (!isPlainObject(current)) return undefined;
    current = current[segment as string];
  }
  return current;
}

function startsWith(pathValue: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.length <= pathValue.length && prefix.every((segment, i) => String(segment) === String(pathValue[i]));
}
