/**
 * `hitloop export --aggregated` (docs/design.md §3): one row per item of an overlap run, in data
 * order: its input, the aggregated label and confidence of each field, the votes per label and the
 * workers who answered. An item nobody answered (all its units expired) is a row with status
 * `unaggregated` and no label: reported, never dropped.
 */
import type { Writable } from 'node:stream';
import type { Database } from '../model/database.ts';
import { type AggregatedItem, aggregateRun } from '../review/itemAggregates.ts';
import { csvLine } from './csv.ts';

export interface AggregatedRow {
  run_id: string;
  assignment_id: string;
  item_index: number;
  status: AggregatedItem['status'];
  method: string;
  /** Lowest confidence over the fields (null when unaggregated). */
  confidence: number | null;
  /** Field -> aggregated label. */
  labels: Record<string, string | null>;
  /** Field -> { label, confidence, votes, tied }. */
  fields: AggregatedItem['fields'];
  /** The workers' ids at their provider. */
  workers: string[];
  input: unknown;
}

export async function aggregatedRows(db: Database, runId: string): Promise<AggregatedRow[]> {
  const { items, workers, method } = await aggregateRun(db.em(), runId);
  const names = new Map(workers.map((w) => [w.workerId, w.providerWorkerId]));
  return items.map((item) => ({
    run_id: runId,
    assignment_id: item.assignmentId,
    item_index: item.index,
    status: item.status,
    method,
    confidence: item.confidence,
    labels: Object.fromEntries(Object.entries(item.fields).map(([field, f]) => [field, f.label])),
    fields: item.fields,
    workers: item.workers.map((w) => names.get(w) ?? w),
    input: item.data,
  }));
}

/** Writes one JSON line (or CSV line: label_<field>, confidence_<field>, votes_<field> columns) per item. */
export async function exportAggregatedTo(db: Database, runId: string, out: Writable, format: 'jsonl' | 'csv'): Promise<{ rows: number }> {
  const rows = await aggregatedRows(db, runId);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  if (format === 'jsonl') {
    for (const row of rows) await write(`${JSON.stringify(row)}\n`);
    return { rows: rows.length };
  }
  const fields = [...new Set(rows.flatMap((r) => Object.keys(r.fields)))];
  await write(
    csvLine([
      'run_id',
      'assignment_id',
      'item_index',
      'status',
      'method',
      'confidence',
      ...fields.flatMap((f) => [`label_${f}`, `confidence_${f}`, `votes_${f}`, `tied_${f}`]),
      'workers',
      'input',
    ]),
  );
  for (const r of rows) {
    await write(
      csvLine([
        r.run_id,
        r.assignment_id,
        r.item_index,
        r.status,
        r.method,
        r.confidence,
        ...fields.flatMap((f) => [r.fields[f]?.label, r.fields[f]?.confidence, r.fields[f]?.votes, r.fields[f]?.tied.join('|')]),
        r.workers.join('|'),
        r.input,
      ]),
    );
  }
  return { rows: rows.length };
}
