/**
 * The command line's parsing and reporting rules, without a stack: every option of every command
 * reaches that command (a parent with subcommands once swallowed `review approve --worker`), one
 * exit-code scheme, the `wait` line of a stopped run, and the "stuck" line of a failing step.
 */
import type { Command} from 'commander';
import { CommanderError } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/errors.ts';
import { buildProgram, withoutVerbose } from '../cli/main.ts';
import { EXIT_CODES, exitCodeOf } from '../cli/exitCodes.ts';
import { createProgressMeter } from '../cli/progress.ts';
import { OperatorError, type RunStatusReport } from '../operator/api.ts';
import { STUCK_AFTER_ATTEMPTS, describeStuckStep } from '../operator/stuckStep.ts';
import { ReviewRequestError } from '../review/requests.ts';
import { emptyUnitCounts } from '../workflows/runPlan.ts';

/** Every command below the root, with its path of names. */
function commandsOf(command: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  return command.commands.flatMap((sub) => [{ path: [...path, sub.name()], command: sub }, ...commandsOf(sub, [...path, sub.name()])]);
}

/** Arguments that satisfy a command's required arguments and options, so only `extra` is under test. */
function minimalArgs(command: Command): string[] {
  const args = command.registeredArguments.filter((a) => a.required).map(() => 'x1');
  for (const option of command.options) {
    if (option.mandatory) args.push(option.long!, '1');
  }
  return args;
}

describe('every option reaches its own command', () => {
  const program = buildProgram();
  const cases = commandsOf(program).flatMap(({ path, command }) =>
    command.options
      .filter((o) => o.long && !o.mandatory && o.long !== '--help' && !o.negate)
      .map((option) => ({ path, command, option, label: `${path.join(' ')} ${option.long}` })),
  );

  it('covers the nested review, qual, config and worker subcommands', () => {
    const labels = cases.map((c) => c.label);
    for (const expected of ['review approve --worker', 'review approve --json', 'review reject --worker', 'review bonus --json', 'review soft-reject --all']) {
      expect(labels).toContain(expected);
    }
  });

  it.each(cases.map((c) => [c.label, c] as const))('%s', async (_label, { path, command, option }) => {
    const fresh = buildProgram().exitOverride();
    // The same command in a fresh program, its action replaced by one that records what it got.
    let target: Command = fresh;
    for (const name of path) target = target.commands.find((c) => c.name() === name)!;
    let seen: Record<string, unknown> | undefined;
    target.action(function (this: Command) {
      seen = this.opts();
    });
    for (const c of commandsOf(fresh)) c.command.exitOverride();
    // An option with fixed choices gets its first; any other value option gets '1'.
    const value = option.required || option.optional ? [option.argChoices?.[0] ?? '1'] : [];
    await fresh.parseAsync(['node', 'hitloop', ...path, ...minimalArgs(command), option.long!, ...value]);
    expect(seen, `${path.join(' ')} ran`).toBeDefined();
    const got = seen![option.attributeName()];
    // An option with its own parser may turn "1" into 1.
    expect(got === undefined ? got : String(got), `${option.long} of ${path.join(' ')}`).toBe(value.length > 0 ? value[0] : 'true');
  });

  it('--verbose still works after a subcommand', async () => {
    const fresh = buildProgram().exitOverride();
    let all: unknown;
    fresh.commands.find((c) => c.name() === 'review')!.commands.find((c) => c.name() === 'approve')!.action(function (this: Command) {
      all = this.opts().all;
    });
    const { argv, verbose } = withoutVerbose(['node', 'hitloop', 'review', 'approve', 'r1', '--verbose', '--all']);
    expect(verbose).toBe(true);
    await fresh.parseAsync(argv);
    expect(all).toBe(true);
    expect(fresh.opts().verbose).toBe(true);
  });
});

describe('exit codes', () => {
  it('one scheme: usage 2, not found 3, unavailable 4, refused or failed 1', () => {
    expect(exitCodeOf(new ConfigError([{ path: 'task_reward', value: -1, message: 'must be >= 0' }]))).toBe(EXIT_CODES.usage);
    expect(exitCodeOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"))).toBe(EXIT_CODES.usage);
    expect(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(EXIT_CODES.ok);
    expect(exitCodeOf(new OperatorError('no task run "x"', 'not_found'))).toBe(EXIT_CODES.notFound);
    expect(exitCodeOf(new ReviewRequestError('there is no task run "x"', 'not_found'))).toBe(EXIT_CODES.notFound);
    expect(exitCodeOf(new WorkflowNotFoundError('gone', 'taskrun-x', undefined))).toBe(EXIT_CODES.notFound);
    expect(exitCodeOf(new OperatorError('cannot reach the Temporal server', 'unavailable'))).toBe(EXIT_CODES.unavailable);
    expect(exitCodeOf(new ReviewRequestError('a bonus amount must be greater than 0', 'usage'))).toBe(EXIT_CODES.usage);
    expect(exitCodeOf(new OperatorError('run r refused the change'))).toBe(EXIT_CODES.failed);
    expect(exitCodeOf(new Error('anything else'))).toBe(EXIT_CODES.failed);
  });
});

const report = (over: Partial<RunStatusReport>): RunStatusReport => ({
  runId: 'r-1',
  taskName: 't',
  status: 'running',
  endReason: null,
  failureReason: null,
  units: emptyUnitCounts(),
  totalUnits: 0,
  spend: 0,
  stuck: null,
  ...over,
});

describe('the wait line', () => {
  it('a cancelled run shows what was done and what expired, never a full bar', () => {
    const meter = createProgressMeter(() => 0);
    const line = meter(report({ status: 'cancelled', endReason: 'operator', totalUnits: 12, units: { ...emptyUnitCounts(), completed: 3, expired: 9 } }));
    expect(line).toBe('cancelled (operator): 3 of 12 units done, 9 expired');
    expect(line).not.toMatch(/#/);
  });

  it('a failed run says why', () => {
    const line = createProgressMeter(() => 0)(report({ status: 'failed', failureReason: 'gold.data.file: line 3 is not valid JSON', totalUnits: 4 }));
    expect(line).toMatch(/^failed \(gold\.data\.file: line 3 is not valid JSON\): 0 of 4 units done/);
  });

  it('a running run with a stuck step says so after its bar', () => {
    const line = createProgressMeter(() => 0)(
      report({ totalUnits: 4, units: { ...emptyUnitCounts(), launched: 4 }, stuck: 'stuck: launchUnits failing, 5 attempts: boom' }),
    );
    expect(line).toMatch(/\[\.+\] 0\/4 units .*stuck: launchUnits failing, 5 attempts: boom$/);
  });
});

describe('describeStuckStep', () => {
  const failing = (name: string, attempt: number, message = 'boom') => ({ activityType: { name }, attempt, lastFailure: { message } });

  it('names the most-retried step with its attempts and last failure', () => {
    expect(describeStuckStep([failing('launchUnits', STUCK_AFTER_ATTEMPTS + 1), failing('createAssignments', 9, 'line 2 of d.jsonl is not valid JSON\nmore')])).toBe(
      'stuck: createAssignments failing, 9 attempts: line 2 of d.jsonl is not valid JSON',
    );
  });

  it('a first retry, or a step that has not failed, is not stuck', () => {
    expect(describeStuckStep([failing('launchUnits', STUCK_AFTER_ATTEMPTS - 1)])).toBeNull();
    expect(describeStuckStep([{ activityType: { name: 'launchUnits' }, attempt: 7, lastFailure: null }])).toBeNull();
    expect(describeStuckStep([])).toBeNull();
  });
});
