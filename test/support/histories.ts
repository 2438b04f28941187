/**
 * Recorded workflow histories for the replay test (test/replay.test.ts). With
 * HITLOOP_RECORD_HISTORIES=1, tests that run a scenario save the histories of its TaskRun workflow
 * (every run of it, across continue-as-new) and of a few of its assignment workflows into
 * test/fixtures/histories/<scenario>.<workflow>.json; the replay test replays every file there
 * against the current workflow code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import type { Database } from '../../model/database.ts';
import { Agent } from '../../model/entities.ts';
import { assignmentWorkflowId, taskRunWorkflowId } from '../../workflows/definitions.ts';
import { historyFromJsonValue, historyToJsonValue } from './historyJson.ts';

export const HISTORIES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'histories');

export const recordingHistories = (): boolean => process.env.HITLOOP_RECORD_HISTORIES === '1';

export interface RecordedHistory {
  scenario: string;
  workflowId: string;
  runId: string;
  workflowType: string;
  /** The history in Temporal's JSON form (what `temporal workflow show --output json` prints). */
  history: unknown;
}

/** Every run of a workflow id, oldest first, following the continue-as-new chain back from the latest. */
export async function fetchAllRuns(client: Client, workflowId: string): Promise<Array<{ runId: string; history: History }>> {
  const runs: Array<{ runId: string; history: History }> = [];
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history: History = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift({ runId, history });
    const started: { continuedExecutionRunId?: string | null } | null | undefined = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    runId = started?.continuedExecutionRunId || undefined;
  }
  return runs;
}

/**
 * Saves the scenario's histories when recording is on (replacing that scenario's earlier files);
 * does nothing otherwise. `assignments` bounds how many assignment workflows are kept.
 */
export async function recordRunHistories(
  client: Client,
  db: Database,
  runId: string,
  scenario: string,
  opts: { assignments?: number } = {},
): Promise<string[]> {
  if (!recordingHistories()) return [];
  if (!/^[a-z0-9-]+$/.test(scenario)) throw new Error(`scenario name "${scenario}" must be [a-z0-9-] (it names files)`);
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  for (const file of fs.readdirSync(HISTORIES_DIR)) {
    if (file.startsWith(`${scenario}.`)) fs.rmSync(path.join(HISTORIES_DIR, file));
  }
  const written: string[] = [];
  const save = (workflowId: string, runs: Array<{ runId: string; history: History }>, name: string): void => {
    runs.forEach(({ runId: temporalRunId, history }, i) => {
      const workflowType = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? 'unknown';
      const record: RecordedHistory = {
        scenario,
        workflowId,
        runId: temporalRunId,
        workflowType,
        history: historyToJsonValue(history),
      };
      const file = path.join(HISTORIES_DIR, `${scenario}.${name}${runs.length > 1 ? `.run${i + 1}` : ''}.json`);
      fs.writeFileSync(file, `${JSON.stringify(record, null, 1)}\n`);
      written.push(file);
    });
  };
  save(taskRunWorkflowId(runId), await fetchAllRuns(client, taskRunWorkflowId(runId)), 'taskrun');
  const worked = await db.em().find(Agent, { taskRun: runId }, { orderBy: { createdAt: 'asc' }, fields: ['assignment'] });
  const assignmentIds = [...new Set(worked.map((a) => a.assignment.id))].slice(0, opts.assignments ?? 2);
  for (const [i, assignmentId] of assignmentIds.entries()) {
    const workflowId = assignmentWorkflowId(assignmentId);
    save(workflowId, await fetchAllRuns(client, workflowId), `assignment${i + 1}`);
  }
  return written;
}

/** The committed histories, parsed, with the file each came from. */
export function readRecordedHistories(): Array<RecordedHistory & { file: string; parsed: History }> {
  if (!fs.existsSync(HISTORIES_DIR)) return [];
  return fs
    .readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = path.join(HISTORIES_DIR, f);
      const record = JSON.parse(fs.readFileSync(file, 'utf8')) as RecordedHistory;
      return { ...record, file, parsed: historyFromJsonValue(record.history) };
    });
}
