/**
 * Limits on guessing the operator password (docs/design.md §8 operator tools): failed attempts are
 * counted per client address and per account (the operator's), over a fixed window each
 * (rate-limiter-flexible). Once either count is used up, every attempt, the right password too, is
 * refused with 429 and `Retry-After` until its window ends; a success clears the address's count.
 *
 * Attempts are a login (`POST /api/v1/session`) and any `Authorization: Bearer` header, which holds
 * the same password. The counts live in the gateway process: each gateway counts its own attempts.
 * The address is the TCP peer's, unless the peer is a trusted proxy (setting `trusted_proxies`, e.g.
 * the HAProxy of `hitloop stack`): then it is the client the proxy names in `X-Forwarded-For`.
 * Without that, every client behind a proxy would share its address, and 30 wrong passwords from
 * anyone would lock out everyone.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
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

/** `::ffff:127.0.0.1` (an IPv4 peer of a dual-stack socket) is `127.0.0.1`. */
const plainAddress = (address: string): string => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');

/** Which peers are proxies whose `X-Forwarded-For` is believed. */
export interface TrustedProxies {
  has(address: string): boolean;
}

const NO_PROXIES: TrustedProxies = { has: () => false };

/** Addresses and networks (`127.0.0.1`, `::1`, `172.16.0.0/12`), as config/settings.ts checked them. */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  if (entries.length === 0) return NO_PROXIES;
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return { has: (address) => isIP(address) !== 0 && list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4') };
}

/**
 * The client's address, the unit of the per-address limit: the socket's peer, or, when the peer is
 * one of `trustedProxies`, the nearest address in `X-Forwarded-For` that is not a trusted proxy (read
 * from the right: a proxy appends the address it saw, and what lies left of it the client wrote).
 * The header of a peer that is not trusted is never read.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: TrustedProxies = NO_PROXIES): string {
  const peer = plainAddress(req.socket.remoteAddress ?? 'unknown');
  if (!trustedProxies.has(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((hop) => plainAddress(hop.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (trustedProxies.has(hop)) continue;
    // Not an address (garbage the proxy passed on): count the proxy's own connection, as without a header.
    return isIP(hop) ? hop : peer;
  }
  return peer;
}

/** The console has one account, the operator's. */
export const OPERATOR_ACCOUNT = 'operator';

export class LoginLimiter {
  readonly #byAddress: RateLimiterMemory;
  readonly #byAccount: RateLimiterMemory;
  readonly #limits: LoginLimits;

  readonly #trustedProxies: TrustedProxies;

  constructor(limits: LoginLimits = DEFAULT_LOGIN_LIMITS, proxies: readonly string[] = []) {
    this.#limits = limits;
    this.#trustedProxies = trustedProxies(proxies);
    this.#byAddress = new RateLimiterMemory({ keyPrefix: 'address', points: limits.perAddress.failures, duration: limits.perAddress.windowSeconds });
    this.#byAccount = new RateLimiterMemory({ keyPrefix: 'account', points: limits.perAccount.failures, duration: limits.perAccount.windowSeconds });
  }

  /** The address `req`'s attempts are counted under (see clientAddress). */
  addressOf(req: IncomingMessage): string {
    return clientAddress(req, this.#trustedProxies);
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
