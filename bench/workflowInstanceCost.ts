/**
 * What one new workflow instance costs a worker, without a server: a recorded history replayed N
 * times (`Worker.runReplayHistories`, one history at a time, each replay a new workflow instance in
 * the worker's reusable V8 context, as a worker creates one for every new AssignmentWorkflow and
 * for every replay after a cache eviction). Per instance: the process's CPU time (all threads:
 * the workflow thread, the SDK's core) and wall time, after a warm-up.
 *
 * Cases:
 * - `assignment first task`: AssignmentWorkflow started and its first workflow task (what a
 *   registration costs the worker in workflow code), from test/fixtures/histories/fast-path.assignment1.json;
 * - `assignment whole history`: the same workflow to its end (6 workflow tasks: signal, activities, completion);
 * - `trivial in hitloop's bundle`: a workflow that does nothing, bundled with hitloop's workflows and
 *   tracing interceptors: the cost of evaluating hitloop's bundle for a new instance;
 * - `trivial alone`: the same workflow bundled alone, no interceptors: the SDK's own floor.
 *
 *   node bench/workflowInstanceCost.ts [--instances 300] [--warmup 30] [--only assignment,trivial]
 *   node bench/workflowInstanceCost.ts --bundle <workflows-*.js>   # the assignment cases on another build (before/after)
 *   node bench/workflowInstanceCost.ts --profile <dir>   # the same under --cpu-prof, workflow-thread time by bundled module
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { workflowSinks } from '../observability/telemetry.ts';
import { HISTORIES_DIR } from '../test/support/histories.ts';
import { historyFromJsonValue } from '../test/support/historyJson.ts';
import { defaultBundleDir, ensureWorkflowBundle } from '../workers/workflowBundle.ts';
import { summarizeBundleProfile } from './instanceCost/bundleProfile.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ASSIGNMENT_HISTORY = path.join(HISTORIES_DIR, 'fast-path.assignment1.json');

interface HistoryEvent {
  eventType?: string;
  workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string }; input?: unknown };
}

/** The history's events up to its first workflow task's start: the instance is created and runs its first activation. */
function firstTask(events: HistoryEvent[]): HistoryEvent[] {
  const started = events.findIndex((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_STARTED');
  return events.slice(0, started + 1);
}

function loadHistories(): { assignmentFirst: History; assignmentWhole: History; trivial: History } {
  const record = JSON.parse(fs.readFileSync(ASSIGNMENT_HISTORY, 'utf8')) as { history: { events: HistoryEvent[] } };
  const { events } = record.history;
  // The same start, of a workflow type without arguments: TrivialWorkflow completes in its first activation.
  const trivialEvents = structuredClone(firstTask(events));
  const started = trivialEvents[0]!.workflowExecutionStartedEventAttributes!;
  started.workflowType = { name: 'TrivialWorkflow' };
  delete started.input;
  return {
    assignmentFirst: historyFromJsonValue({ events: firstTask(events) }),
    assignmentWhole: historyFromJsonValue({ events }),
    trivial: historyFromJsonValue({ events: trivialEvents }),
  };
}

interface Case {
  name: string;
  bundlePath: string;
  history: History;
}

interface Measured {
  name: string;
  instances: number;
  cpuMsPerInstance: number;
  wallMsPerInstance: number;
  bundleBytes: number;
}

async function measure(c: Case, warmup: number, instances: number): Promise<Measured> {
  const total = warmup + instances;
  async function* histories() {
    for (let i = 0; i < total; i++) yield { workflowId: `instance-cost-${i}`, history: c.history };
  }
  const results = Worker.runReplayHistories(
    { workflowBundle: { codePath: c.bundlePath }, replayName: 'hitloop-instance-cost', sinks: workflowSinks(undefined) },
    histories(),
  );
  let done = 0;
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  for await (const result of results) {
    if (result.error) throw new Error(`${c.name}: replay failed: ${result.error.name}: ${result.error.message}`);
    done += 1;
    if (done === warmup) {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  if (done !== total) throw new Error(`${c.name}: ${done} of ${total} histories replayed`);
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  return {
    name: c.name,
    instances,
    cpuMsPerInstance: round((cpu.user + cpu.system) / 1000 / instances),
    wallMsPerInstance: round(wall / instances),
    bundleBytes: fs.statSync(c.bundlePath).size,
  };
}

/** The trivial workflow bundled alone, without hitloop's interceptors: the SDK's floor. */
async function bareBundle(): Promise<string> {
  const noop = (): void => {};
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(HERE, 'instanceCost', 'trivialWorkflow.ts'),
    logger: { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop },
  });
  const file = path.join(defaultBundleDir(), 'instance-cost-trivial.js');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, code);
  return file;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '300' },
      warmup: { type: 'string', default: '30' },
      only: { type: 'string' },
      profile: { type: 'string' },
      bundle: { type: 'string' },
    },
  });
  if (values.profile !== undefined) {
    const dir = path.resolve(values.profile);
    const args = process.argv
      .slice(2)
      .filter((a, i, all) => a !== '--profile' && all[i - 1] !== '--profile' && !a.startsWith('--profile='));
    // TEMPORAL_DEBUG: workflows run on the main thread (the same reusable V8 context, no worker thread):
    // node --cpu-prof writes no profile for the SDK's workflow threads, which it terminates.
    const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, fileURLToPath(import.meta.url), ...args], {
      stdio: 'inherit',
      env: { ...process.env, TEMPORAL_DEBUG: '1' },
    });
    if (run.status !== 0) process.exit(run.status ?? 1);
    process.stdout.write(summarizeBundleProfile(dir));
    return;
  }
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const instances = Number(values.instances);
  const warmup = Number(values.warmup);
  const only = values.only?.split(',');
  const histories = loadHistories();
  // Built (or found in the cache) only for the cases measured.
  const hitloop = async (): Promise<string> => values.bundle ?? (await ensureWorkflowBundle()).codePath;
  const withTrivial = async (): Promise<string> =>
    (await ensureWorkflowBundle(defaultBundleDir(), path.join(HERE, 'instanceCost', 'withHitloop.ts'))).codePath;
  const cases: Array<Omit<Case, 'bundlePath'> & { bundle: () => Promise<string> }> = [
    { name: 'assignment first task', bundle: hitloop, history: histories.assignmentFirst },
    { name: 'assignment whole history', bundle: hitloop, history: histories.assignmentWhole },
    { name: "trivial in hitloop's bundle", bundle: withTrivial, history: histories.trivial },
    { name: 'trivial alone', bundle: bareBundle, history: histories.trivial },
  ].filter((c) => (only === undefined || only.some((o) => c.name.startsWith(o))) && (values.bundle === undefined || c.bundle === hitloop));
  for (const { bundle, ...c } of cases) {
    const m = await measure({ ...c, bundlePath: await bundle() }, warmup, instances);
    process.stdout.write(
      `${m.name.padEnd(30)} ${m.cpuMsPerInstance.toFixed(2).padStart(7)} ms CPU  ${m.wallMsPerInstance.toFixed(2).padStart(7)} ms wall per instance` +
        `  (${m.instances} instances, bundle ${(m.bundleBytes / 1e6).toFixed(2)} MB)\n`,
    );
  }
  process.stdout.write(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
}

await main();
