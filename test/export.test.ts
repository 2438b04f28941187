/**
 * `hitloop export` round-trips: the JSONL export of a completed run holds exactly the submitted
 * data, one row per submitted unit with its input, worker, timings and review state; the CSV export
 * holds the same values in columns. On SQLite and PostgreSQL.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../cli/exitCodes.ts';
import { exportRunTo } from '../export/exportRun.ts';
import type { ExportRow } from '../export/rows.ts';
import { createReviewer } from '../review/operator.ts';
import { formConfig } from './support/configs.ts';
import { completeUnit, type Assigned } from './support/completeUnits.ts';
import { startStack, type Dialect, type Stack } from './support/stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const execFileAsync = promisify(execFile);

/** Submissions chosen to trip a careless writer: commas, quotes, newlines, unicode, numbers, nesting. */
const SUBMISSIONS: Array<Record<string, unknown>> = [
  { label: 'positive', comment: 'plain' },
  { label: 'negative', comment: 'a, "quoted"\nsecond line', score: 3 },
  { label: 'positive', comment: ' leading space and ünïcödé ✓', score: 0.25, extra: { tags: ['a', 'b'], ok: true } },
  { label: 'negative', comment: '', score: -1 },
];

async function collect(fn: (out: Writable) => Promise<unknown>): Promise<string> {
  const chunks: string[] = [];
  const out = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  await fn(out);
  return chunks.join('');
}

describe.each<Dialect>(['sqlite', 'postgresql'])('export on %s', (dialect) => {
  let stack: Stack;
  let runId: string;
  const done: Assigned[] = [];
  beforeAll(async () => {
    stack = await startStack(dialect);
    ({ runId } = await stack.operator.launch(formConfig({}, SUBMISSIONS.length)));
    for (const [i, data] of SUBMISSIONS.entries()) done.push(await completeUnit(stack.env.client, stack.db, runId, `exp-${i % 2}`, data));
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('completed');
    const reviewer = createReviewer({ client: stack.env.client, db: stack.db, settings: stack.settings });
    await reviewer.review(runId, { decision: 'approve', unitIds: [done[0]!.unitId], note: 'fine' });
    await reviewer.bonus(runId, { unitId: done[0]!.unitId, amount: 0.3, reason: 'thanks' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('JSONL holds exactly the submitted data, with input, worker, timings and review state', async () => {
    const text = await collect((out) => exportRunTo(stack.db, runId, out, { format: 'jsonl' }));
    const rows = text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as ExportRow);
    expect(rows).toHaveLength(SUBMISSIONS.length);
    // In data order; each row's data is exactly what its worker submitted.
    expect(rows.map((r) => r.unit_id)).toEqual(done.map((d) => d.unitId));
    expect(rows.map((r) => r.data)).toEqual(SUBMISSIONS);
    rows.forEach((row, i) => {
      expect(row).toMatchObject({
        run_id: runId,
        assignment_id: done[i]!.assignmentId,
        assignment_index: i,
        input: { text: `sentence ${i}` },
        provider: 'mock',
        provider_worker_id: `exp-${i % 2}`,
        worker_id: done[i]!.workerId,
        agent_id: done[i]!.agentId,
        unit_kind: 'normal',
        pay: 0.5,
      });
      expect(Date.parse(row.submitted_at!)).toBeGreaterThanOrEqual(Date.parse(row.accepted_at));
      expect(row.duration_seconds).toBeGreaterThanOrEqual(0);
    });
    expect(rows[0]).toMatchObject({
      unit_status: 'accepted',
      agent_status: 'approved',
      review_decision: 'approve',
      review_note: 'fine',
      bonus_total: 0.3,
    });
    expect(rows[1]).toMatchObject({ unit_status: 'completed', review_decision: null, reviewed_at: null, bonus_total: 0 });
  });

  it('CSV holds the same values, with each answer in a column of its own', async () => {
    const text = await collect((out) => exportRunTo(stack.db, runId, out, { format: 'csv' }));
    const records = parseCsv(text, { columns: true }) as Array<Record<string, string>>;
    expect(records).toHaveLength(SUBMISSIONS.length);
    records.forEach((record, i) => {
      const submitted = SUBMISSIONS[i]!;
      expect(JSON.parse(record.data!)).toEqual(submitted);
      expect(record['data.comment']).toBe(submitted.comment);
      expect(record['data.label']).toBe(submitted.label);
      expect(record['data.score']).toBe(submitted.score === undefined ? '' : String(submitted.score));
      expect(record['input.text']).toBe(`sentence ${i}`);
      expect(record.unit_id).toBe(done[i]!.unitId);
    });
    expect(JSON.parse(records[2]!['data.extra']!)).toEqual({ tags: ['a', 'b'], ok: true });
  });

  it.runIf(dialect === 'sqlite')('`hitloop export --out` writes the file, and refuses an unknown format or run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-export-'));
    const env = { ...process.env, HITLOOP_DATABASE_URL: stack.settings.databaseUrl, HITLOOP_LOG_LEVEL: 'warn' };
    const cli = (...args: string[]) =>
      execFileAsync(process.execPath, [path.join(ROOT, 'cli', 'main.ts'), ...args], { env, cwd: ROOT }).catch(
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
    const file = path.join(dir, 'out.jsonl');
    const ok = await cli('export', runId, '--format', 'jsonl', '--out', file);
    expect(ok.stderr).toMatch(new RegExp(`exported ${SUBMISSIONS.length} unit\\(s\\) of run ${runId} to ${file}`));
    const rows = fs
      .readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as ExportRow);
    expect(rows.map((r) => r.data)).toEqual(SUBMISSIONS);
    expect(fs.readdirSync(dir)).toEqual(['out.jsonl']);

    const badFormat = (await cli('export', runId, '--format', 'xml')) as { code: number; stderr: string };
    expect(badFormat.code).toBe(EXIT_CODES.usage);
    expect(badFormat.stderr).toMatch(/unknown export format "xml"; use one of jsonl, csv/);
    const badRun = (await cli('export', 'r-nope', '--out', path.join(dir, 'never.jsonl'))) as { code: number; stderr: string };
    expect(badRun.stderr).toMatch(/no task run "r-nope"/);
    expect(badRun.code).toBe(EXIT_CODES.notFound);
    const badAggregated = (await cli('export', 'r-nope', '--aggregated', '--out', path.join(dir, 'never.jsonl'))) as { code: number; stderr: string };
    expect(badAggregated.stderr).toMatch(/no task run "r-nope"/);
    expect(badAggregated.code).toBe(EXIT_CODES.notFound);
    expect(fs.readdirSync(dir)).toEqual(['out.jsonl']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
