/**
 * `hitloop export`: every submitted unit of a run (completed or reviewed), as JSON Lines or CSV,
 * streamed from the database page by page. Written to a file through a temporary file renamed at
 * the end, so a file that exists is complete.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Database } from '../model/database.ts';
import { TaskRun, type UnitKind } from '../model/entities.ts';
import { submittedUnits } from '../review/units.ts';
import { CsvColumns } from './csv.ts';
import { exportRow } from './rows.ts';

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export class ExportError extends Error {
  override name = 'ExportError';
  /** For the command line's exit code (cli/exitCodes.ts): a bad format is usage, an unknown run not found. */
  readonly kind: 'usage' | 'not_found';

  constructor(message: string, kind: 'usage' | 'not_found') {
    super(message);
    this.kind = kind;
  }
}

/** Refuses a run that is not in the database, with the exit code of "not found". */
export async function requireExportableRun(db: Database, runId: string): Promise<void> {
  if (!(await db.em().findOne(TaskRun, runId, { fields: ['id'] }))) {
    throw new ExportError(`there is no task run "${runId}" in the database; \`hitloop runs\` lists the runs`, 'not_found');
  }
}

export interface ExportOptions {
  format: ExportFormat;
  /** Default: normal units only; screening and gold units are quality checks, not collected data. */
  kinds?: readonly UnitKind[];
}

export function parseExportFormat(format: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ExportError(`unknown export format "${format}"; use one of ${EXPORT_FORMATS.join(', ')}`, 'usage');
  }
  return format as ExportFormat;
}

/** Writes the run's submitted units to `out`; returns how many rows were written. */
export async function exportRunTo(db: Database, runId: string, out: Writable, opts: ExportOptions): Promise<{ rows: number }> {
  await requireExportableRun(db, runId);
  const filter = { kinds: opts.kinds ?? (['normal'] as const) };
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  let rows = 0;
  if (opts.format === 'jsonl') {
    for await (const unit of submittedUnits(db.em(), runId, filter)) {
      await write(`${JSON.stringify(exportRow(unit))}\n`);
      rows++;
    }
    return { rows };
  }
  // CSV needs every column before the first line: one pass for the keys, one for the rows.
  const columns = new CsvColumns();
  for await (const unit of submittedUnits(db.em(), runId, filter)) columns.see(exportRow(unit));
  await write(columns.header());
  for await (const unit of submittedUnits(db.em(), runId, filter)) {
    await write(columns.line(exportRow(unit)));
    rows++;
  }
  return { rows };
}

/**
 * Write a file through `write`: complete or absent, never half-written. The partial file is removed
 * only once its stream has closed (it may still be opening when `write` fails).
 */
export async function writeFileWhole<T>(file: string, write: (out: Writable) => Promise<T>): Promise<{ result: T; file: string }> {
  const target = path.resolve(file);
  const partial = `${target}.${process.pid}.partial`;
  const stream = fs.createWriteStream(partial);
  try {
    const result = await write(stream);
    stream.end();
    await finished(stream);
    await fs.promises.rename(partial, target);
    return { result, file: target };
  } catch (err) {
    stream.destroy();
    if (!stream.closed) await once(stream, 'close');
    await fs.promises.rm(partial, { force: true });
    throw err;
  }
}

/** Export to a file (complete or absent, never half-written). */
export async function exportRunToFile(
  db: Database,
  runId: string,
  file: string,
  opts: ExportOptions,
): Promise<{ rows: number; file: string }> {
  const { result, file: target } = await writeFileWhole(file, (out) => exportRunTo(db, runId, out, opts));
  return { rows: result.rows, file: target };
}
