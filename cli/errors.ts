/** One line for any error a command can meet: what went wrong and, where known, what to do. */
import { ConfigError } from '../config/errors.ts';

export function describeError(err: unknown): string {
  if (err instanceof ConfigError) return `invalid config:\n${err.message}`;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause && !err.message.includes(cause.slice(2)) ? cause : ''}`;
  }
  return String(err);
}
