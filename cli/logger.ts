/**
 * pino loggers for hitloop processes: JSON lines on stderr, so stdout stays for command output.
 * Every worker, gateway and command logs in this one format; `hitloop dev` (a person watching a
 * terminal) asks for `pretty`: the same records, one readable line each (pino-pretty), written
 * synchronously so they never cut into a progress line.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LoggerOptions {
  /** One readable line per record instead of JSON (for a terminal). */
  pretty?: boolean;
}

export function createLogger(level: string, name: string, opts: LoggerOptions = {}): Logger {
  const destination = opts.pretty
    ? pretty({ destination: 2, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', colorize: process.stderr.isTTY })
    : pino.destination(2);
  return pino({ level, name, base: { pid: process.pid } }, destination);
}
