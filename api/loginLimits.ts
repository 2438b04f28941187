/**
 * Limits on guessing the operator password (docs/design.md §8 operator tools): failed attempts are
 * counted per client address and per account (the operator's), over a fixed window each
 * (rate-limiter-flexible). Once either count is used up, every attempt, the right password too, is
 * refused with 429 and `Retry-After` until its window ends; a success clears the address's count.
 *
 * Attempts are a login (`POST /api/v1/session`) and any `Authorization: Bearer` header, which holds
 * the same password. The counts live in the gateway process: each gateway counts its own attempts,
 * and the address is the TCP peer's (behind a proxy, the proxy's: the per-account limit still holds).
 */
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { ApiError } from './errors.ts';

export interface LoginLimits {
  /** Failed attempts from one client address within `windowSeconds`. */
  perAddress: { failures: number; windowSeconds: number };
  /** Failed attempts on one account (from anywhere) within `windowSeconds`. */
  perAccount: { failures: number; windowSeconds: number };
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perAddress: { failures: 30, windowSeconds: 10 * 60 },
  perAccount: { failures: 300, windowSeconds: 60 * 60 },
};

/** The client's address as the socket sees it (the unit of the per-address limit). */
export const clientAddress = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown';

/** The console has one account, the operator's. */
export const OPERATOR_ACCOUNT = 'operator';

export class LoginLimiter {
  readonly #byAddress: RateLimiterMemory;
  readonly #byAccount: RateLimiterMemory;
  readonly #limits: LoginLimits;

  constructor(limits: LoginLimits = DEFAULT_LOGIN_LIMITS) {
    this.#limits = limits;
    this.#byAddress = new RateLimiterMemory({ keyPrefix: 'address', points: limits.perAddress.failures, duration: limits.perAddress.windowSeconds });
    this.#byAccount = new RateLimiterMemory({ keyPrefix: 'account', points: limits.perAccount.failures, duration: limits.perAccount.windowSeconds });
  }

  /** Seconds until `address` may try the password of `account` again; 0 when it may now. */
  async retryAfter(address: string, account = OPERATOR_ACCOUNT): Promise<number> {
    const [byAddress, byAccount] = await Promise.all([this.#byAddress.get(address), this.#byAccount.get(account)]);
    let wait = 0;
    if (byAddress && byAddress.consumedPoints >= this.#limits.perAddress.failures) wait = Math.max(wait, byAddress.msBeforeNext);
    if (byAccount && byAccount.consumedPoints >= this.#limits.perAccount.failures) wait = Math.max(wait, byAccount.msBeforeNext);
    return wait > 0 ? Math.max(1, Math.ceil(wait / 1000)) : 0;
  }

  /** Refuses (429, with the seconds to wait) when the attempt is over a limit. */
  async admit(address: string, account = OPERATOR_ACCOUNT): Promise<void> {
    const seconds = await this.retryAfter(address, account);
    if (seconds > 0) {
      throw new ApiError(429, 'too_many_attempts', `too many wrong passwords; wait ${seconds} s (Retry-After) and try again`, {
        'retry-after': String(seconds),
      });
    }
  }

  async failed(address: string, account = OPERATOR_ACCOUNT): Promise<void> {
    await Promise.all([this.#byAddress.penalty(address, 1), this.#byAccount.penalty(account, 1)]);
  }

  async succeeded(address: string): Promise<void> {
    await this.#byAddress.delete(address);
  }
}
