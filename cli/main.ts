#!/usr/bin/env node
/**
 * `hitloop`: the operator's command line. Each command lives in cli/commands/; this file wires
 * them and turns every error into one clear line (a stack trace only with --verbose).
 */
import { Command, CommanderError } from 'commander';
import { registerConfigCommands } from './commands/config.ts';
import { registerDevCommand } from './commands/dev.ts';
import { registerExportCommand } from './commands/export.ts';
import { registerFakeMturkCommand } from './commands/fakeMturk.ts';
import { registerFakeCommands } from './commands/fake.ts';
import { registerGatewayCommand } from './commands/gateway.ts';
import { registerLinksCommand } from './commands/links.ts';
import { registerQualCommands } from './commands/qual.ts';
import { registerReviewCommands } from './commands/review.ts';
import { registerRunCommands } from './commands/runs.ts';
import { registerSimulateCommand } from './commands/simulate.ts';
import { registerStackCommand } from './commands/stack.ts';
import { registerWorkerCommand } from './commands/worker.ts';
import { describeError } from './errors.ts';
import { exitCodeOf } from './exitCodes.ts';

export function buildProgram(): Command {
  const program = new Command('hitloop')
    .description('durable human-in-the-loop data collection on Temporal')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)');
  registerRunCommands(program);
  registerWorkerCommand(program);
  registerGatewayCommand(program);
  registerDevCommand(program);
  registerSimulateCommand(program);
  registerLinksCommand(program);
  registerConfigCommands(program);
  registerQualCommands(program);
  registerReviewCommands(program);
  registerExportCommand(program);
  registerFakeMturkCommand(program);
  registerFakeCommands(program);
  givePositionalOptions(program);
  registerStackCommand(program);
  return program;
}

/**
 * A command with subcommands stops reading its own options at the subcommand's name: without this,
 * `review approve <run> --worker w` gave --worker to `review` and approve never saw it. Commander
 * needs it from the root down; `--verbose` after a subcommand is taken out by withoutVerbose.
 */
function givePositionalOptions(command: Command): void {
  if (command.commands.length > 0) command.enablePositionalOptions();
  for (const sub of command.commands) givePositionalOptions(sub);
}

/** `--verbose` is the root's option; anywhere on the line it means the same. */
export function withoutVerbose(argv: readonly string[]): { argv: string[]; verbose: boolean } {
  const [node = 'node', script = 'hitloop', ...args] = argv;
  const rest = args.filter((a) => a !== '--verbose');
  return { argv: [node, script, ...(rest.length < args.length ? ['--verbose'] : []), ...rest], verbose: rest.length < args.length };
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Every command, not only the root: a subcommand's usage error would otherwise exit on its own, with 1.
  const overrideExit = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(overrideExit);
  };
  overrideExit(program);
  const { argv: args, verbose } = withoutVerbose(argv);
  try {
    await program.parseAsync(args);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // Commander has printed its own message (usage error or help).
    if (err instanceof CommanderError) return exitCodeOf(err);
    process.stderr.write(`hitloop: ${describeError(err)}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli/main.ts')) {
  const code = await main(process.argv);
  process.exit(code);
}
