/**
 * Saving workflow histories of a benchmark or chaos run as fixtures for the replay test
 * (test/replay.test.ts replays every file of test/fixtures/histories against the current workflow
 * code). A file holds `historyToJSON(history)`: the JSON form of the protobuf History, which
 * `historyFromJSON` reads back. Saved only when asked (`--save-histories`): the fixtures change
 * when someone decides they should.
 */
import fs from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Client } from '@temporalio/client';
import { REPO_ROOT } from '../chaos/stack.ts';

export const HISTORIES_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'histories');

/** Histories bigger than this are not kept as fixtures (the repository is not a data store). */
const MAX_FIXTURE_BYTES = 4 * 1024 * 1024;

export interface SavedHistory {
  file: string;
  workflowId: string;
  events: number;
  bytes: number;
}

let saving = false;
/** Set by the entry points from their `--save-histories` flag. */
export function setSaveHistories(on: boolean): void {
  saving = on;
}

export async function saveHistory(client: Client, workflowId: string, executionRunId: string | undefined, name: string): Promise<SavedHistory | null> {
  const history = await client.workflow.getHandle(workflowId, executionRunId).fetchHistory();
  const json = historyToJSON(history);
  if (json.length > MAX_FIXTURE_BYTES) return null;
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  const file = path.join(HISTORIES_DIR, `${name}.json`);
  fs.writeFileSync(file, json);
  return { file: path.relative(REPO_ROOT, file), workflowId, events: history.events?.length ?? 0, bytes: json.length };
}

/**
 * The TaskRun workflow's executions (each continue-as-new run, oldest first) and up to
 * `assignments` assignment workflows with the longest histories, as `<prefix>-taskrun-<n>.json` and
 * `<prefix>-assignment-<n>.json`. Earlier files of the same prefix are removed first.
 */
export async function saveRunHistories(
  stack: { client: Client },
  runId: string,
  prefix: string,
  opts: { assignments?: number; force?: boolean } = {},
): Promise<SavedHistory[]> {
  if (!saving && !opts.force) return [];
  if (fs.existsSync(HISTORIES_DIR)) {
    for (const f of fs.readdirSync(HISTORIES_DIR)) if (f.startsWith(`${prefix}-`) && f.endsWith('.json')) fs.rmSync(path.join(HISTORIES_DIR, f));
  }
  const saved: SavedHistory[] = [];
  const executions: Array<{ runId: string; startTime: Date }> = [];
  for await (const wf of stack.client.workflow.list({ query: `WorkflowId = 'taskrun-${runId}'` })) executions.push({ runId: wf.runId, startTime: wf.startTime });
  executions.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  for (const [i, e] of executions.entries()) {
    const s = await saveHistory(stack.client, `taskrun-${runId}`, e.runId, `${prefix}-taskrun-${i + 1}`);
    if (s) saved.push(s);
  }
  const wanted = opts.assignments ?? 3;
  if (wanted > 0) {
    const closed: Array<{ workflowId: string; runId: string; events: number }> = [];
    for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'AssignmentWorkflow' AND ExecutionStatus != 'Running'` })) {
      if (wf.workflowId.startsWith(`assignment-${runId}-`)) closed.push({ workflowId: wf.workflowId, runId: wf.runId, events: wf.historyLength });
    }
    closed.sort((a, b) => b.events - a.events);
    for (const [i, a] of closed.slice(0, wanted).entries()) {
      const s = await saveHistory(stack.client, a.workflowId, a.runId, `${prefix}-assignment-${i + 1}`);
      if (s) saved.push(s);
    }
  }
  return saved;
}
