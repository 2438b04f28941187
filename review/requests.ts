/**
 * Review operations as requests (docs/design.md §4): approve, reject, soft-reject and bonus, each carrying a
 * request key. The key is the operator's, or derived from the operation itself, so that running
 * the same command again is the same request and never reviews or pays twice.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ReviewDecision } from '../model/entities.ts';
import { moneySchema } from '../model/money.ts';
import type { ReviewOperation } from '../workflows/review.ts';

export class ReviewRequestError extends Error {
  override name = 'ReviewRequestError';
  /** For the command line's exit code (cli/exitCodes.ts); absent: refused or failed. */
  readonly kind: 'not_found' | 'usage' | 'unavailable' | undefined;

  constructor(message: string, kind?: 'not_found' | 'usage' | 'unavailable') {
    super(message);
    this.kind = kind;
  }
}

export const REQUEST_KEY_PATTERN = /^[A-Za-z0-9._:@+-]{1,200}$/;

/** What the command line calls each decision. */
export const DECISION_BY_COMMAND = { approve: 'approve', reject: 'reject', 'soft-reject': 'soft_reject' } as const satisfies Record<
  string,
  ReviewDecision
>;

export function parseRequestKey(key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  if (!REQUEST_KEY_PATTERN.test(key)) {
    throw new ReviewRequestError(`a request key is 1-200 letters, digits or ._:@+- characters (got ${JSON.stringify(key)})`, 'usage');
  }
  return key;
}

/** What a bonus amount may be: an amount of money as the database stores it (model/money.ts), > 0. */
export const bonusAmountSchema = moneySchema({
  type: 'a bonus amount must be a number such as 0.5',
  min: 'a bonus amount must be greater than 0',
  decimals: 'a bonus amount has at most 4 decimal places',
  max: 'a bonus amount must be below 10,000,000,000',
});

/**
 * A bonus amount (bonusAmountSchema) from a number or a command-line string. Anything else is
 * refused with what was wrong.
 */
export function parseBonusAmount(raw: unknown): number {
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : undefined;
  if (text === undefined || text === '' || !/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(text)) {
    throw new ReviewRequestError(`a bonus amount must be a number such as 0.50 (got ${JSON.stringify(raw)})`, 'usage');
  }
  const amount = Number(text);
  if (!Number.isFinite(amount)) throw new ReviewRequestError(`a bonus amount must be a finite number (got ${JSON.stringify(raw)})`, 'usage');
  const checked = bonusAmountSchema.safeParse(amount);
  if (!checked.success) throw new ReviewRequestError(`${checked.error.issues[0]!.message} (got ${text}); nothing was paid`, 'usage');
  return amount;
}

/**
 * A character `String.prototype.trim` keeps: a text with one is not blank. Spelled out rather than
 * `\S` so that the OpenAPI document's `pattern` (api/openapi.ts) means the same to engines other than
 * JavaScript's, whose `\s` differs (Python's takes U+001C-U+001F as spaces, trim does not).
 */
export const NOT_BLANK = /[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;

// Checked before trimming, so that the limits are those of the text sent (as the API's document says).
export const bonusReasonSchema = z
  .string({ error: 'a bonus needs a reason (shown to the worker)' })
  .regex(NOT_BLANK, 'a bonus needs a reason (shown to the worker)')
  .max(1000, 'a bonus reason is at most 1000 characters')
  .trim();

export function parseBonusReason(raw: unknown): string {
  const parsed = bonusReasonSchema.safeParse(raw);
  if (!parsed.success) throw new ReviewRequestError(parsed.error.issues[0]?.message ?? 'invalid bonus reason', 'usage');
  return parsed.data;
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/**
 * The request key of reviewing one unit: the given key (with the unit appended when one key covers
 * several units) or `<decision>-<unitId>`. A unit is reviewed once, so the derived key names the
 * operation completely; a different decision on the same unit is a different request, refused
 * because the unit is no longer waiting for review.
 */
export function reviewRequestKey(decision: ReviewDecision, unitId: string, given?: string, bulk = false): string {
  if (given !== undefined) return bulk ? `${given}:${unitId}` : given;
  return `${decision}-${unitId}`;
}

/**
 * The request key of a bonus: the given key, or one derived from unit, amount and reason. Two
 * deliberate, identical bonuses for the same unit need their own `--request-key`.
 */
export function bonusRequestKey(unitId: string, amount: number, reason: string, given?: string): string {
  return given ?? `bonus-${unitId}-${amount}-${sha(reason)}`;
}

/** Temporal workflow id of a review operation: one workflow per request key. */
export const reviewWorkflowId = (requestKey: string): string => `review-${requestKey}`;

export function describeOperation(op: ReviewOperation): string {
  return op.kind === 'bonus' ? `bonus of ${op.amount} on unit ${op.unitId}` : `${op.decision.replace('_', '-')} of unit ${op.unitId}`;
}
