/**
 * Saving workflow histories of a benchmark or chaos run as fixtures for the replay test
 * (test/replay.test.ts replays every file of test/fixtures/histories against the current workflow
 * code). Same format and naming as test/support/histories.ts: `<scenario>.<workflow>[.run<n>].json`
 * holding `{ scenario, workflowId, runId, workflowType, history }` with the history in Temporal's
 * JSON form. Scenarios here: `chaos-run`, `bench-e2e`, `bench-scale`. Saved only when asked
 * (`--save-histories`): fixtures change when someone decides they should.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { fetchAllRuns, HISTORIES_DIR, type RecordedHistory } from '../test/support/histories.ts';
import { historyToJsonValue } from '../test/support/historyJson.ts';
import { assignmentWorkflowId, taskRunWorkflowId } from '../workflows/definitions.ts';
import { REPO_ROOT } from '../chaos/stack.ts';

/** Histories bigger than this are not kept as fixtures (the repository is not a data store). */
const MAX_FIXTURE_BYTES = 2.5 * 1024 * 1024;

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

/**
 * `runs` is a workflow's continue-as-new chain, oldest first; `keep` says which of them get a file
 * (named `.run<n>` after their place in the chain, when there are several).
 */
function write(
  scenario: string,
  name: string,
  workflowId: string,
  runs: Array<{ runId: string; history: History }>,
  keep: (index: number, count: number) => boolean = () => true,
): SavedHistory[] {
  const saved: SavedHistory[] = [];
  runs.forEach(({ runId, history }, i) => {
    if (!keep(i, runs.length)) return;
    const record: RecordedHistory = {
      scenario,
      workflowId,
      runId,
      workflowType: history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? 'unknown',
      history: historyToJsonValue(history),
    };
    // Indented like test/support/histories.ts writes them, unless that alone makes a file too big.
    let text = `${JSON.stringify(record, null, 1)}\n`;
    if (text.length > MAX_FIXTURE_BYTES) text = `${JSON.stringify(record)}\n`;
    if (text.length > MAX_FIXTURE_BYTES) return;
    const file = path.join(HISTORIES_DIR, `${scenario}.${name}${runs.length > 1 ? `.run${i + 1}` : ''}.json`);
    fs.writeFileSync(file, text);
    saved.push({ file: path.relative(REPO_ROOT, file), workflowId, events: history.events?.length ?? 0, bytes: text.length });
  });
  return saved;
}

/**
 * The first and the last run of the TaskRun workflow's continue-as-new chain (the middle ones of a
 * long run repeat the same story) and the `assignments` assignment workflows with the longest
 * histories (those that saw drops, reconnects and released agents), replacing the scenario's
 * earlier files.
 */
export async function saveRunHistories(
  stack: { client: Client },
  runId: string,
  scenario: string,
  opts: { assignments?: number } = {},
): Promise<SavedHistory[]> {
  if (!saving) return [];
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  for (const f of fs.readdirSync(HISTORIES_DIR)) if (f.startsWith(`${scenario}.`)) fs.rmSync(path.join(HISTORIES_DIR, f));
  const firstAndLast = (i: number, count: number): boolean => i === 0 || i === count - 1;
  const saved = write(scenario, 'taskrun', taskRunWorkflowId(runId), await fetchAllRuns(stack.client, taskRunWorkflowId(runId)), firstAndLast);
  const closed: Array<{ workflowId: string; events: number }> = [];
  for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'AssignmentWorkflow' AND ExecutionStatus != 'Running'` })) {
    if (wf.workflowId.startsWith(assignmentWorkflowId(`${runId}-`))) closed.push({ workflowId: wf.workflowId, events: wf.historyLength });
  }
  closed.sort((a, b) => b.events - a.events || a.workflowId.localeCompare(b.workflowId));
  for (const [i, a] of closed.slice(0, opts.assignments ?? 2).entries()) {
    saved.push(...write(scenario, `assignment${i + 1}`, a.workflowId, await fetchAllRuns(stack.client, a.workflowId)));
  }
  return saved;
}
