/**
 * Reading assignments from a config's `data` setting: an inline list, or a JSON, JSONL or CSV file.
 * JSONL and CSV are streamed, so a run over a million rows never holds them all in memory; a run
 * that resumes (continue-as-new, restart) passes the offset it has reached.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import readline from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { ConfigError, showValue } from './errors.ts';
import { goldItemSchema, type AssignmentData, type DataFile, type DataSource, type GoldItem, type TaskRunConfig } from './taskRunConfig.ts';

export interface AssignmentRecord {
  /** Position in the source, from 0, counting assignments (blank JSONL lines are not assignments). */
  index: number;
  data: AssignmentData;
}

export interface ReadOptions {
  /** Skip this many assignments first. */
  offset?: number;
  /** Where the data setting sits in the config, for error messages (default `data`). */
  key?: string;
}

export async function* readAssignments(data: DataSource, options: ReadOptions = {}): AsyncGenerator<AssignmentRecord> {
  const offset = options.offset ?? 0;
  const key = options.key ?? 'data';
  if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`offset must be an integer >= 0, got ${offset}`);
  if (Array.isArray(data)) {
    for (let index = offset; index < data.length; index++) {
      yield { index, data: requireObject(data[index], `${key}[${index}]`, undefined) };
    }
    return;
  }
  switch (data.format) {
    case 'json':
      yield* readJson(data, offset, key);
      return;
    case 'jsonl':
      yield* readJsonl(data, offset, key);
      return;
    case 'csv':
      yield* readCsv(data, offset, key);
      return;
  }
}

/** Number of assignments; reads (and so checks) every one of them, streaming. */
export async function countAssignments(data: DataSource): Promise<number> {
  if (Array.isArray(data)) return data.length;
  let count = 0;
  for await (const _record of readAssignments(data)) count++;
  return count;
}

/** sha256 (hex) of the data file's bytes, or of the inline list as canonical JSON (keys sorted). */
export async function hashDataSource(data: DataSource, key = 'data'): Promise<string> {
  const hash = createHash('sha256');
  if (Array.isArray(data)) {
    hash.update(canonicalJson(data));
    return hash.digest('hex');
  }
  await assertReadableFile(data, key);
  try {
    for await (const chunk of fs.createReadStream(data.file)) hash.update(chunk as Buffer);
  } catch (error) {
    throw cannotRead(data, key, error);
  }
  return hash.digest('hex');
}

/** Gold items `{ input, expected }` of a gold data source, each checked. */
export async function* readGoldItems(data: DataSource, key = 'gold.data'): AsyncGenerator<{ index: number; item: GoldItem }> {
  for await (const record of readAssignments(data, { key })) {
    const result = goldItemSchema.safeParse(record.data);
    if (!result.success) {
      const where = Array.isArray(data) ? `${key}[${record.index}]` : `${key}.file`;
      const problems = result.error.issues.map((i) => `${i.path.join('.') || 'item'}: ${i.message}`).join('; ');
      throw ConfigError.single(where, `gold item ${record.index} is not { input: {...}, expected: ... } (${problems})`);
    }
    yield { index: record.index, item: result.data };
  }
}

/**
 * Synchronously check that every data file a config names exists and is a readable file, so a bad
 * path is reported when the config is loaded rather than when the run first reads it.
 */
export function checkDataFiles(config: Pick<TaskRunConfig, 'data' | 'screening' | 'gold'>, where?: string): void {
  const sources: [string, DataSource | undefined][] = [
    ['data', config.data],
    ['screening.data', config.screening.data],
    ['gold.data', config.gold.data],
  ];
  const issues = [];
  for (const [key, source] of sources) {
    if (source === undefined || Array.isArray(source)) continue;
    try {
      const stat = fs.statSync(source.file);
      if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
      fs.accessSync(source.file, fs.constants.R_OK);
    } catch (error) {
      issues.push(cannotRead(source, key, error).issues[0]!);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, where);
}

// ---------------------------------------------------------------- formats

async function* readJson(source: DataFile, offset: number, key: string): AsyncGenerator<AssignmentRecord> {
  await assertReadableFile(source, key);
  let text: string;
  try {
    text = await fs.promises.readFile(source.file, 'utf8');
  } catch (error) {
    throw cannotRead(source, key, error);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw ConfigError.single(`${key}.file`, `${source.file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) {
    throw ConfigError.single(`${key}.file`, `${source.file} must hold a JSON array of objects (one per assignment), not ${typeName(parsed)}`);
  }
  for (let index = offset; index < parsed.length; index++) {
    yield { index, data: requireObject(parsed[index], `${key}.file`, `item ${index} of ${source.file}`) };
  }
}

async function* readJsonl(source: DataFile, offset: number, key: string): AsyncGenerator<AssignmentRecord> {
  await assertReadableFile(source, key);
  const handle = await open(source.file).catch((error: unknown) => {
    throw cannotRead(source, key, error);
  });
  const stream = handle.createReadStream({ encoding: 'utf8' });
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let index = 0;
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      const text = lineNumber === 1 ? line.replace(/^\uFEFF/, '') : line;
      if (text.trim() === '') continue;
      // Lines before the offset were read by an earlier pass: count them, don't parse them again.
      if (index < offset) {
        index++;
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw ConfigError.single(`${key}.file`, `line ${lineNumber} of ${source.file} is not valid JSON: ${(error as Error).message}`);
      }
      yield { index, data: requireObject(parsed, `${key}.file`, `line ${lineNumber} of ${source.file}`) };
      index++;
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw cannotRead(source, key, error);
  } finally {
    lines.close();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
}

async function* readCsv(source: DataFile, offset: number, key: string): AsyncGenerator<AssignmentRecord> {
  await assertReadableFile(source, key);
  const stream = fs.createReadStream(source.file);
  const parser = parseCsv({ columns: true, bom: true, skip_empty_lines: true });
  // A read error (the file vanished, EIO) must end the parse, not hang it.
  stream.on('error', (error) => parser.destroy(error));
  stream.pipe(parser);
  let index = 0;
  try {
    for await (const record of parser as AsyncIterable<Record<string, string>>) {
      if (index >= offset) yield { index, data: record };
      index++;
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== undefined && code.startsWith('CSV_')) {
      throw ConfigError.single(`${key}.file`, `${source.file} is not valid CSV: ${(error as Error).message}`);
    }
    throw cannotRead(source, key, error);
  } finally {
    stream.destroy();
    parser.destroy();
  }
}

// ---------------------------------------------------------------- helpers

async function assertReadableFile(source: DataFile, key: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(source.file);
  } catch (error) {
    throw cannotRead(source, key, error);
  }
  if (!stat.isFile()) throw cannotRead(source, key, Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' }));
}

function cannotRead(source: DataFile, key: string, error: unknown): ConfigError {
  const message = error instanceof Error ? error.message : String(error);
  // Node's messages end in `, open '/the/path'`: the path is already in our message.
  const reason = message.replace(/, \w+ '[^']*'$/, '');
  return ConfigError.single(`${key}.file`, `cannot read ${source.file} (${reason}); check the path (a relative one is taken from the config file's folder)`);
}

function requireObject(value: unknown, path: string, what: string | undefined): AssignmentData {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as AssignmentData;
  const allowed = 'must be a JSON object (one assignment: field names to values)';
  if (what === undefined) throw new ConfigError([{ path, value, message: allowed }]);
  throw ConfigError.single(path, `${what} ${allowed}, not ${typeName(value)}`);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${showValue(value)}`;
}

/** JSON with object keys sorted at every level: equal data, equal text, equal hash. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
