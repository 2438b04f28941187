#!/usr/bin/env node
/**
 * `hitloop`: the operator's command line. Each command lives in cli/commands/; this file wires
 * them and turns every error into one clear line (a stack trace only with --verbose).
 */
import { Command, CommanderError } from 'commander';
import { registerConfigCommands } from './commands/config.ts';
import { registerDevCommand } from './commands/dev.ts';
import { registerExportCommand } from './commands/export.ts';
import { registerGatewayCommand } from './commands/gateway.ts';
import { registerLinksCommand } from './commands/links.ts';
import { registerQualCommands } from './commands/qual.ts';
import { registerReviewCommands } from './commands/review.ts';
import { registerRunCommands } from './commands/runs.ts';
import { registerSimulateCommand } from './commands/simulate.ts';
import { registerStackCommand } from './commands/stack.ts';
import { registerWorkerCommand } from './commands/worker.ts';
import { describeError } from './errors.ts';

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
  registerStackCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const verbose = argv.includes('--verbose');
    process.stderr.write(`hitloop: ${describeError(err)}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli/main.ts')) {
  const code = await main(process.argv);
  process.exit(code);
}
