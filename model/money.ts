/**
 * Money as the database keeps it (rewards, budgets, bonuses: `numeric(14,4)` in both dialects,
 * model/entities.ts): at most 4 decimal places, below 10^10. One rule for every amount a user gives
 * (config/taskRunConfig.ts, the live changes of workflows/definitions.ts, review/requests.ts), so
 * nothing is accepted that the database would store as another amount (1e-7 as 0, 0.12345 as
 * 0.1235) or refuse (1e12). Pure (zod only): workflow code validates live changes with it.
 */
import { z } from 'zod';

export const MONEY_PRECISION = 14;
export const MONEY_SCALE = 4;
/** The smallest amount: 0.0001. */
export const MONEY_STEP = 1 / 10 ** MONEY_SCALE;
/** Every amount is below this: 10^(14-4). */
export const MONEY_LIMIT = 10 ** (MONEY_PRECISION - MONEY_SCALE);

/** Whether the database stores `amount` as it is (at most 4 decimal places). */
export const isExactMoney = (amount: number): boolean => Math.round(amount * 10 ** MONEY_SCALE) / 10 ** MONEY_SCALE === amount;

/** A zod message: a text, or the error function of config/zodIssues.ts `explain`. */
type Message = string | { error: (issue: { input?: unknown }) => string };

export interface MoneyMessages {
  /** Not a number. */
  type: Message;
  /** Not > 0 (or, with `allowZero`, below 0). */
  min: Message;
  /** More than 4 decimal places. */
  decimals: Message;
  /** 10^10 or more. */
  max: Message;
}

/** The texts of config/taskRunConfig.ts and the live changes (shown after "<key>: <value> is not allowed: "). */
export function moneyRules(allowZero = false): { type: string; min: string; decimals: string; max: string } {
  const number = allowZero ? 'a number >= 0' : 'a number > 0';
  return {
    type: `must be ${number}`,
    min: `must be ${number}`,
    decimals: `must be ${number} with at most 4 decimal places: amounts are stored to 0.0001${allowZero ? '' : ', the smallest is 0.0001'}`,
    max: 'must be below 10,000,000,000',
  };
}

/**
 * An amount of money: > 0 (>= 0 with `allowZero`), at most 4 decimal places, below 10^10.
 * `multipleOf` puts the step in JSON Schema (the API's OpenAPI document); the refinement is the
 * exact test (zod's `multipleOf` lets 5e-324 and 0.30000000000000004 through).
 */
export function moneySchema(messages: MoneyMessages, { allowZero = false }: { allowZero?: boolean } = {}) {
  const number = z.number(messages.type);
  const decimals = typeof messages.decimals === 'string' ? { error: messages.decimals } : messages.decimals;
  return (allowZero ? number.min(0, messages.min) : number.positive(messages.min))
    .multipleOf(MONEY_STEP, { ...decimals, abort: true }) // one issue, not two, for an amount both catch
    .refine(isExactMoney, decimals)
    .lt(MONEY_LIMIT, messages.max);
}
