/**
 * Errors of the JSON API: every failure answers `{ code, message }`, the message a sentence that says
 * what was wrong and what to do. Refusals of the operator modules keep their own words (they are
 * written for operators); anything unexpected is logged and answered without internals.
 */
import type { z } from 'zod';
import { ConfigError } from '../config/errors.ts';
import { findUnstorable } from '../model/storableJson.ts';
import { ExportError } from '../export/exportRun.ts';
import { OperatorError } from '../operator/api.ts';
import { QualificationError } from '../qualifications/grants.ts';
import { ReviewRequestError } from '../review/requests.ts';

export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  /** Headers of the answer (`Retry-After` of a 429). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The API's answer for `err`, or null when it is unexpected (then: 500, logged, no details). */
export function knownApiError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof OperatorError || err instanceof ReviewRequestError || err instanceof QualificationError || err instanceof ExportError) {
    const notFound = /^(no (running )?task run|there is no )/i.test(err.message);
    return new ApiError(notFound ? 404 : 409, notFound ? 'not_found' : 'refused', err.message);
  }
  if (err instanceof ConfigError) return new ApiError(400, 'invalid_config', err.message);
  return null;
}

/** The answer to an unexpected failure: no details, only the id of the log line that holds them. */
export function internalError(errorId: string): ApiError {
  return new ApiError(500, 'internal', `the server failed to do this; nothing was acknowledged, so try again, and quote error ${errorId} if it keeps failing`);
}

/** A request carrying what the databases cannot store exactly (model/storableJson.ts), refused before any work. */
export function unstorableInput(where: 'path' | 'query' | 'body', value: unknown): ApiError | null {
  const problem = findUnstorable(value);
  if (!problem) return null;
  const at = [where, ...problem.path.map(String)].join('.');
  return new ApiError(400, 'invalid_request', `the request is not valid, nothing was changed: ${at}: ${problem.message}`);
}

/** A zod failure as one sentence naming each bad place: `body.amount: must be a number`. */
export function invalidInput(where: 'body' | 'query', error: z.ZodError): ApiError {
  const details = error.issues.map((issue) => {
    const at = [where, ...issue.path.map(String)].join('.');
    return `${at}: ${issue.message}`;
  });
  return new ApiError(400, 'invalid_request', `the request is not valid, nothing was changed: ${details.join('; ')}`);
}
