/** Commands on task runs: launch, runs, status, set, shutdown, wait. */
import type { Command } from 'commander';
import { parse as parseYamlScalar } from 'yaml';
import { loadSettings } from '../../config/settings.ts';
import { UNIT_STATUSES } from '../../model/status.ts';
import { formatCostPreview } from '../../config/deepCheck.ts';
import { connectOperator, OperatorError, validateRunFile, type Operator, type RunStatusReport } from '../../operator/api.ts';
import type { RunLimitsChange } from '../../workflows/definitions.ts';
import { EXIT_CODES } from '../exitCodes.ts';
import { createProgressMeter } from '../progress.ts';

async function withOperator<T>(fn: (op: Operator) => Promise<T>): Promise<T> {
  const op = await connectOperator(loadSettings());
  try {
    return await fn(op);
  } finally {
    await op.close();
  }
}

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export function formatUnits(units: RunStatusReport['units']): string {
  return (
    UNIT_STATUSES.filter((s) => units[s] > 0)
      .map((s) => `${s} ${units[s]}`)
      .join(' · ') || 'none'
  );
}

export function formatStatus(s: RunStatusReport): string {
  const lines = [
    `run ${s.runId}${s.taskName ? ` (task ${s.taskName})` : ''}: ${s.status}${s.endReason && s.status !== 'running' ? ` (${s.endReason})` : ''}`,
    `units: ${formatUnits(s.units)} (total ${s.totalUnits})`,
    `spend: ${s.spend}${s.serviceFee ? ` (of which provider fee ${s.serviceFee})` : ''}`,
  ];
  if (s.failureReason) lines.push(`failure: ${s.failureReason}`);
  if (s.stuck) lines.push(s.stuck);
  return lines.join('\n');
}

/** `key=value` pairs for `hitloop set`; values are YAML scalars (`3`, `0.5`). */
export function parseLimitChanges(pairs: string[]): RunLimitsChange {
  const change: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new OperatorError(`"${pair}" is not key=value (e.g. max_num_concurrent_units=5)`, 'usage');
    change[pair.slice(0, eq).trim()] = parseYamlScalar(pair.slice(eq + 1));
  }
  return change as RunLimitsChange;
}

export function registerRunCommands(program: Command): void {
  program
    .command('validate')
    .description('check a task-run config as launch does (data, gold and template files read to the end) and preview its cost')
    .argument('<config>', 'task-run config file (YAML)')
    .argument('[overrides...]', 'key=value settings that win over the file (dotted keys for nesting)')
    .option('--json', 'print {"config", "preview"}')
    .action(async (file: string, overrides: string[], opts: { json?: boolean }) => {
      const { config, preview } = await validateRunFile(file, overrides);
      if (opts.json) return print(JSON.stringify({ config, preview }));
      print(`${file}: valid (task ${config.task_name}, provider ${config.provider.type}, blueprint ${config.blueprint.type})`);
      for (const line of formatCostPreview(preview)) print(`  ${line}`);
    });

  program
    .command('launch')
    .description('start a task run from a YAML config; prints the run id')
    .argument('<config>', 'task-run config file (YAML)')
    .argument('[overrides...]', 'key=value settings that win over the file (dotted keys for nesting)')
    .option('--json', 'print {"runId", "workflowId"}')
    .option('--run-id <id>', 'choose the run id (default: a new random one)')
    .action(async (file: string, overrides: string[], opts: { json?: boolean; runId?: string }) => {
      const result = await withOperator((op) => op.launchFile(file, overrides, { runId: opts.runId }));
      print(opts.json ? JSON.stringify(result) : result.runId);
    });

  program
    .command('runs')
    .description('list task runs with status and unit counts')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }) => {
      const reports = await withOperator((op) => op.runs());
      if (opts.json) return print(JSON.stringify(reports));
      if (reports.length === 0) return print('no task runs yet; start one with `hitloop launch <config.yaml>`');
      for (const r of reports) print(`${r.runId}  ${r.status.padEnd(9)}  ${r.taskName}  ${formatUnits(r.units)}${r.stuck ? `  ${r.stuck}` : ''}`);
    });

  program
    .command('status')
    .description('status, unit counts by status and spend of a run')
    .argument('<runId>')
    .option('--json', 'print {"runId", "status", "units", "spend", ...}')
    .action(async (runId: string, opts: { json?: boolean }) => {
      const s = await withOperator((op) => op.status(runId));
      print(opts.json ? JSON.stringify(s) : formatStatus(s));
    });

  program
    .command('set')
    .description(
      'change caps of a live run: max_num_concurrent_units, allowed_concurrent, maximum_units_per_worker, task_reward, task_lifetime_seconds, max_spend',
    )
    .argument('<runId>')
    .argument('<changes...>', 'key=value')
    .action(async (runId: string, pairs: string[]) => {
      const limits = await withOperator((op) => op.changeLimits(runId, parseLimitChanges(pairs)));
      print(
        `run ${runId} now: ${Object.entries(limits)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
    });

  program
    .command('shutdown')
    .description('cancel a run: expire its unfinished units and wait for in-flight work')
    .argument('<runId>')
    .option('--reason <text>', 'recorded as the end reason', 'operator')
    .action(async (runId: string, opts: { reason: string }) => {
      const s = await withOperator((op) => op.shutdown(runId, opts.reason));
      print(formatStatus(s));
    });

  program
    .command('wait')
    .description('show progress until the run ends; exit 0 when completed, 1 when cancelled or failed (see README, exit codes)')
    .argument('<runId>')
    .action(async (runId: string) => {
      const meter = createProgressMeter();
      const tty = process.stderr.isTTY;
      let lastLine = '';
      const s = await withOperator((op) =>
        op.wait(runId, {
          onProgress: (report) => {
            const line = meter(report);
            if (tty) process.stderr.write(`\r${line}\u001b[K`);
            else if (line !== lastLine) process.stderr.write(`${line}\n`);
            lastLine = line;
          },
        }),
      );
      if (tty) process.stderr.write('\n');
      print(formatStatus(s));
      process.exitCode = s.status === 'completed' ? EXIT_CODES.ok : EXIT_CODES.failed;
    });
}
