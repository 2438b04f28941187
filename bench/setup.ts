/**
 * Common steps of the benchmarks: a stack of real processes, a task-run config, launching a run and
 * waiting until its units are out, and reading the largest history of a run's workflows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Unit } from '../model/entities.ts';
import { startStack, type Stack, type StackTemporalKind } from '../chaos/stack.ts';
import { describeMachine } from './machine.ts';
import type { BenchContext } from './benchmark.ts';

export interface BenchStackOptions {
  workers?: number;
  gateways?: number;
  gatewayEnv?: NodeJS.ProcessEnv;
  workerEnv?: NodeJS.ProcessEnv;
  /** The dev server (default) or the production cluster (four Temporal services on PostgreSQL). */
  temporal?: StackTemporalKind;
}

export async function startBenchStack(ctx: BenchContext, opts: BenchStackOptions = {}): Promise<Stack> {
  const profileDir = path.join(ctx.workDir, 'profiles');
  if (ctx.profile) fs.mkdirSync(profileDir, { recursive: true });
  const profileArgs = (who: string): string[] => (ctx.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, who)}`] : []);
  const stack = await startStack({
    workDir: ctx.workDir,
    dialect: (process.env.HITLOOP_BENCH_DIALECT as 'postgresql' | 'sqlite' | undefined) ?? 'postgresql',
    workerNodeArgs: profileArgs('worker'),
    gatewayNodeArgs: profileArgs('gateway'),
    workerEnv: opts.workerEnv,
    gatewayEnv: opts.gatewayEnv,
    // info would write a line per activity; the benchmarks measure hitloop, not its logging.
    logLevel: 'warn',
    temporal: opts.temporal,
  });
  try {
    ctx.machine ??= await describeMachine({ temporalCliPath: stack.temporal.cliPath, db: stack.db });
    for (let i = 0; i < (opts.workers ?? 1); i++) await stack.addWorker();
    for (let i = 0; i < (opts.gateways ?? 0); i++) await stack.addGateway();
  } catch (err) {
    await stack.stop().catch(() => undefined);
    throw err;
  }
  return stack;
}

/** A static-form run on the mock provider: one select and one free-text field. */
export function benchConfig(data: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    task_name: `bench-${Math.random().toString(36).slice(2, 8)}`,
    task_title: 'Benchmark: label a sentence',
    task_description: 'Say whether the sentence is positive, and comment.',
    task_tags: ['bench'],
    task_reward: 0.05,
    provider: 'mock',
    assignment_duration_seconds: 3600,
    no_submission_patience_seconds: 86_400,
    blueprint: {
      type: 'static-form',
      fields: [
        { name: 'label', type: 'select', options: ['positive', 'negative'] },
        { name: 'comment', type: 'textarea', required: false },
      ],
    },
    data,
    ...overrides,
  };
}

export function inlineData(assignments: number): Array<Record<string, unknown>> {
  return Array.from({ length: assignments }, (_, i) => ({ text: `sentence number ${i}` }));
}

/** A JSONL data file of `assignments` rows, for runs too big to pass inline. */
export function writeJsonlData(dir: string, assignments: number): string {
  const file = path.join(dir, `data-${assignments}.jsonl`);
  const fd = fs.openSync(file, 'w');
  const chunk: string[] = [];
  for (let i = 0; i < assignments; i++) {
    chunk.push(JSON.stringify({ text: `sentence number ${i}` }));
    if (chunk.length === 10_000) {
      fs.writeSync(fd, `${chunk.join('\n')}\n`);
      chunk.length = 0;
    }
  }
  if (chunk.length) fs.writeSync(fd, `${chunk.join('\n')}\n`);
  fs.closeSync(fd);
  return file;
}

/** Polls the database until `units` units of the run are launched (ready for workers). */
export async function waitUntilLaunched(stack: Stack, runId: string, units: number, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const launched = await stack.db.em().count(Unit, { taskRun: runId, status: 'launched' });
    if (launched >= units) return;
    if (Date.now() > deadline) throw new Error(`run ${runId}: only ${launched} of ${units} units launched after ${timeoutMs} ms; see ${stack.workDir}/worker-1.log`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The largest history length among every execution (continue-as-new included) of the run's
 * workflows: TaskRun executions are described one by one (visibility reports the length of closed
 * executions only), assignment workflows are read from visibility.
 */
export async function largestHistory(stack: Stack, runId: string): Promise<{ workflowId: string; executionRunId: string; events: number }> {
  let best = { workflowId: '', executionRunId: '', events: 0 };
  const consider = (workflowId: string, executionRunId: string, events: number): void => {
    if (events > best.events) best = { workflowId, executionRunId, events };
  };
  for await (const wf of stack.client.workflow.list({ query: `WorkflowId = 'taskrun-${runId}'` })) {
    const described = await stack.client.workflow.getHandle(wf.workflowId, wf.runId).describe();
    consider(wf.workflowId, wf.runId, described.historyLength);
  }
  for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'AssignmentWorkflow' AND ExecutionStatus != 'Running'` })) {
    if (wf.workflowId.startsWith(`assignment-${runId}-`)) consider(wf.workflowId, wf.runId, wf.historyLength);
  }
  return best;
}
