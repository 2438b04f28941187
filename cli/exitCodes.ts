/**
 * One exit-code scheme for every `hitloop` command (documented in README.md, "Exit codes"), so a
 * script can tell "the run ended badly" from "you typed it wrong" from "nothing is listening".
 */
import { CommanderError } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ConfigError } from '../config/errors.ts';
import { DatabaseUrlError } from '../model/databaseUrl.ts';

export const EXIT_CODES = {
  /** The command did what it was asked (`wait`: the run completed). */
  ok: 0,
  /** The run ended badly (`wait`: cancelled or failed), or the request was refused or failed. */
  failed: 1,
  /** Usage or config error: a bad argument, option, key=value or config file. Nothing was changed. */
  usage: 2,
  /** What the command names (a run, a unit, a worker) does not exist. */
  notFound: 3,
  /** A service the command needs (Temporal, the database) cannot be reached. */
  unavailable: 4,
} as const;
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** What kind of failure an error is, when the code that threw it knows better than its class. */
export type ErrorKind = 'usage' | 'not_found' | 'unavailable';

const CODE_OF_KIND: Record<ErrorKind, ExitCode> = { usage: EXIT_CODES.usage, not_found: EXIT_CODES.notFound, unavailable: EXIT_CODES.unavailable };

const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version', 'commander.executeSubCommandAsync']);

export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof CommanderError) return HELP_CODES.has(err.code) && err.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
  const kind = (err as { kind?: unknown } | null)?.kind;
  if (typeof kind === 'string' && kind in CODE_OF_KIND) return CODE_OF_KIND[kind as ErrorKind];
  if (err instanceof ConfigError || err instanceof DatabaseUrlError) return EXIT_CODES.usage;
  if (err instanceof WorkflowNotFoundError) return EXIT_CODES.notFound;
  return EXIT_CODES.failed;
}
