/** pino loggers for hitloop processes: JSON lines on stderr, so stdout stays for command output. */
import pino, { type Logger } from 'pino';

export function createLogger(level: string, name: string): Logger {
  return pino({ level, name, base: { pid: process.pid } }, pino.destination(2));
}
