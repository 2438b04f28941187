/**
 * The `hitloop` command line as a child process against a real stack (Temporal dev server, a
 * database, a worker), on SQLite and on PostgreSQL: the machine-readable shapes of `launch --json`
 * and `status --json`, live cap changes, one-line errors, shutdown, and `wait`'s exit codes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../cli/exitCodes.ts';
import { UNIT_STATUSES } from '../model/status.ts';
import { taskRunWorkflowId } from '../workflows/definitions.ts';
import { formConfig } from './support/configs.ts';
import { REPO_ROOT, runCli, startCli, type CliEnv, type CliResult } from './support/cli.ts';
import { workUntilRunEnds } from './support/scriptedAgents.ts';
import { eventually, startStack, type Dialect, type Stack } from './support/stack.ts';

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'static-form.yaml');

/** Non-empty lines of a stream. */
const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

/** An error as the CLI must print it: on stderr, no stack trace, a non-zero exit. */
function expectCleanError(result: CliResult, what: RegExp): void {
  expect(result.code, `exit code; stderr: ${result.stderr}`).not.toBe(0);
  expect(result.stderr).toMatch(what);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe.each<Dialect>(['sqlite', 'postgresql'])('hitloop command line on %s', (dialect) => {
  let stack: Stack;
  let env: CliEnv;
  let tmp: string;

  beforeAll(async () => {
    stack = await startStack(dialect);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-cli-'));
    env = {
      TEMPORAL_ADDRESS: stack.env.address,
      HITLOOP_DATABASE_URL: stack.settings.databaseUrl,
      HITLOOP_TASK_QUEUE: stack.settings.taskQueue,
      // No user config of the machine's user leaks in.
      HITLOOP_CONFIG_FILE: path.join(tmp, 'no-such-config.yaml'),
    };
  });
  afterAll(async () => {
    await stack?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function launchExample(): Promise<{ runId: string; workflowId: string }> {
    const result = await runCli(['launch', EXAMPLE, '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(lines(result.stdout)).toHaveLength(1);
    const parsed = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(['runId', 'workflowId']);
    expect(parsed.workflowId).toBe(`taskrun-${String(parsed.runId)}`);
    return parsed as { runId: string; workflowId: string };
  }

  it('launch --json, status --json, set, shutdown, and wait exiting 1 for the cancelled run', async () => {
    const { runId } = await launchExample();

    const status = await runCli(['status', runId, '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as { runId: string; status: string; units: Record<string, number>; spend: number };
    expect(report).toMatchObject({ runId, spend: expect.any(Number) });
    expect(['launching', 'running']).toContain(report.status);
    expect(Object.keys(report.units).sort()).toEqual([...UNIT_STATUSES].sort());
    for (const n of Object.values(report.units)) expect(Number.isInteger(n)).toBe(true);

    const set = await runCli(['set', runId, 'max_num_concurrent_units=2'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/max_num_concurrent_units=2/);

    const bad = await runCli(['set', runId, 'max_num_concurrent_units=-1'], env);
    expectCleanError(bad, /max_num_concurrent_units/);
    expect(lines(bad.stderr)).toHaveLength(1);

    const shutdown = await runCli(['shutdown', runId], env);
    expect(shutdown.code, shutdown.stderr).toBe(0);
    expect(shutdown.stdout).toMatch(/cancelled/);
    const after = JSON.parse((await runCli(['status', runId, '--json'], env)).stdout) as { status: string; units: Record<string, number> };
    expect(after.status).toBe('cancelled');
    expect(after.units.expired).toBe(12);

    const wait = await runCli(['wait', runId], env);
    expect(wait.code, `wait of a cancelled run; stderr: ${wait.stderr}`).toBe(EXIT_CODES.failed);
    expect(wait.stdout).toMatch(/cancelled/);
    // The real state, not a bar that reads full because every unit left was expired.
    expect(wait.stderr).toMatch(/cancelled \(operator\): 0 of 12 units done, 12 expired/);
    expect(wait.stderr).not.toMatch(/#/);
  });

  it('runs lists a run once across continue-as-new; review approve/bonus take --worker and --json', async () => {
    const { runId } = await stack.operator.launch(formConfig({ max_num_concurrent_units: 2 }, 8), {
      workflowOptions: { historyLimit: 60, updateLimit: 4 },
    });
    const workers = ['cli-can-1', 'cli-can-2'];
    const done = await Promise.all(workers.map((w) => workUntilRunEnds(stack.env.client, runId, w)));
    expect(done.reduce((a, b) => a + b, 0)).toBe(8);
    await eventually(async () => {
      let executions = 0;
      for await (const _wf of stack.env.client.workflow.list({ query: `WorkflowId = '${taskRunWorkflowId(runId)}'` })) executions++;
      return executions > 1 ? executions : undefined;
    }, 'more than one execution of the run in visibility');

    const runs = await runCli(['runs', '--json'], env);
    expect(runs.code, runs.stderr).toBe(0);
    const rows = (JSON.parse(runs.stdout) as Array<{ runId: string }>).filter((r) => r.runId === runId);
    expect(rows).toHaveLength(1);

    const approve = await runCli(['review', 'approve', runId, '--worker', 'cli-can-1', '--json'], env);
    expect(approve.code, approve.stderr).toBe(0);
    const approved = JSON.parse(approve.stdout) as Array<{ unitId: string; unitStatus: string }>;
    expect(approved).toHaveLength(done[0]!);
    expect(new Set(approved.map((r) => r.unitStatus))).toEqual(new Set(['accepted']));

    const bonus = await runCli(['review', 'bonus', runId, approved[0]!.unitId, '--amount', '0.1', '--reason', 'careful', '--json'], env);
    expect(bonus.code, bonus.stderr).toBe(0);
    expect(JSON.parse(bonus.stdout)).toMatchObject({ kind: 'bonus', unitId: approved[0]!.unitId });
  }, 300_000);

  it('exit codes: usage 2, not found 3, service unavailable 4', async () => {
    expect((await runCli(['status', 'no-such-run'], env)).code).toBe(EXIT_CODES.notFound);
    expect((await runCli(['set', 'no-such-run', 'max_num_concurrent_units=2'], env)).code).toBe(EXIT_CODES.notFound);
    expect((await runCli(['set', 'no-such-run', 'nonsense'], env)).code).toBe(EXIT_CODES.usage);
    expect((await runCli(['status'], env)).code).toBe(EXIT_CODES.usage);
    expect((await runCli(['review', 'bonus', 'r', 'u', '--amount', '-1', '--reason', 'x'], env)).code).toBe(EXIT_CODES.usage);
    const unreachable = await runCli(['status', 'r-1'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expectCleanError(unreachable, /cannot reach the Temporal server/);
    expect(unreachable.code).toBe(EXIT_CODES.unavailable);
  }, 300_000);

  it('wait shows progress and exits 0 once the run completes', async () => {
    const { runId } = await launchExample();
    const waiting = startCli(['wait', runId], env);
    const done = await Promise.all(['cli-ann', 'cli-bob', 'cli-cyd'].map((w) => workUntilRunEnds(stack.env.client, runId, w)));
    expect(done.reduce((a, b) => a + b, 0)).toBe(12);
    const wait = await waiting.done;
    expect(wait.code, `wait of a completed run; stderr: ${wait.stderr}`).toBe(0);
    expect(wait.stdout).toMatch(/completed/);
    // Not a terminal: one progress line per change, on stderr.
    expect(wait.stderr).toMatch(/12\/12 units/);
  });

  it('status of an unknown run: one line, non-zero exit', async () => {
    const result = await runCli(['status', 'nope'], env);
    expectCleanError(result, /nope/);
    expect(lines(result.stderr)).toHaveLength(1);
  });

  it('an invalid config file: one block naming the bad key, non-zero exit, nothing launched', async () => {
    const file = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(file, fs.readFileSync(EXAMPLE, 'utf8').replace('max_num_concurrent_units: 4', 'max_num_concurrent_units: lots'));
    const result = await runCli(['launch', file, '--json'], env);
    expectCleanError(result, /max_num_concurrent_units/);
    expect(result.code).toBe(EXIT_CODES.usage);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/invalid config/);
  });
});
