/**
 * Operator authentication of the console and the JSON API (docs/design.md §8 operator tools).
 *
 * Two ways in, both checked against the operator password of the settings
 * (`HITLOOP_OPERATOR_PASSWORD` or `operator_password` in the user config):
 * - a browser logs in once (`POST /api/v1/session`) and gets a session cookie: HTTP-only,
 *   SameSite=Strict, signed, so any gateway instance accepts it without shared state. Every
 *   state-changing request with a cookie must also carry the session's CSRF token in the
 *   `x-csrf-token` header (a cookie alone is ambient: another site could make the browser send it).
 * - a script sends `Authorization: Bearer <password>`; nothing ambient, so no CSRF token is needed.
 *
 * Without a configured password everything is refused: the console is off until one is set.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'hitloop_session';
export const CSRF_HEADER = 'x-csrf-token';
const SESSION_SECONDS = 12 * 3600;

export type Credential = { kind: 'session'; sessionId: string; expiresAt: number } | { kind: 'token' };

export type AuthVerdict =
  | { ok: true; credential: Credential }
  | { ok: false; status: 401 | 403 | 503; code: string; message: string };

const equal = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

export class OperatorAuth {
  readonly #password: string | undefined;
  readonly #key: Buffer;
  readonly #secure: boolean;

  /**
   * `secret` signs the sessions; the password is part of the signing key, so changing the password
   * ends every session. `secure` adds the cookie's Secure flag (the gateway's public URL is https).
   */
  constructor(opts: { secret: string; password: string | undefined; secure: boolean }) {
    this.#password = opts.password || undefined;
    this.#key = createHash('sha256')
      .update(`hitloop-operator-session:${opts.secret}:${opts.password ?? ''}`)
      .digest();
    this.#secure = opts.secure;
  }

  get enabled(): boolean {
    return this.#password !== undefined;
  }

  passwordMatches(given: string): boolean {
    if (!this.#password) return false;
    const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
    return equal(digest(given), digest(this.#password));
  }

  /** A new session: the cookie to set and its CSRF token. */
  newSession(now = Date.now()): { cookie: string; csrfToken: string; expiresAt: number } {
    const sessionId = randomBytes(18).toString('base64url');
    const expiresAt = now + SESSION_SECONDS * 1000;
    const body = Buffer.from(JSON.stringify({ s: sessionId, e: expiresAt })).toString('base64url');
    const value = `${body}.${this.#mac('session', body)}`;
    return { cookie: this.#cookie(value, SESSION_SECONDS), csrfToken: this.csrfToken(sessionId), expiresAt };
  }

  /** The Set-Cookie header that ends the session in the browser. */
  clearCookie(): string {
    return this.#cookie('', 0);
  }

  csrfToken(sessionId: string): string {
    return this.#mac('csrf', sessionId);
  }

  /** Who is asking; `changes` says whether the request changes anything (then a cookie needs CSRF). */
  check(req: IncomingMessage, changes: boolean, now = Date.now()): AuthVerdict {
    if (!this.#password) {
      return {
        ok: false,
        status: 503,
        code: 'console_disabled',
        message: 'the operator console is off: set HITLOOP_OPERATOR_PASSWORD (or `hitloop config set operator_password ...`) and restart the gateway',
      };
    }
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const match = /^Bearer\s+(.+)$/i.exec(authorization);
      if (match && this.passwordMatches(match[1]!.trim())) return { ok: true, credential: { kind: 'token' } };
      return { ok: false, status: 401, code: 'unauthorized', message: 'the Authorization header does not hold the operator token; send `Bearer <operator password>`' };
    }
    const session = this.#session(req, now);
    if (!session) return { ok: false, status: 401, code: 'unauthorized', message: 'log in first: this needs an operator session or token' };
    if (changes) {
      const given = req.headers[CSRF_HEADER];
      if (typeof given !== 'string' || !equal(Buffer.from(given), Buffer.from(this.csrfToken(session.sessionId)))) {
        return { ok: false, status: 403, code: 'csrf', message: 'this action lacks the session\'s CSRF token (x-csrf-token header); reload the console and try again' };
      }
    }
    return { ok: true, credential: session };
  }

  #session(req: IncomingMessage, now: number): Extract<Credential, { kind: 'session' }> | null {
    const value = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (!value) return null;
    const dot = value.indexOf('.');
    if (dot <= 0) return null;
    const body = value.slice(0, dot);
    if (!equal(Buffer.from(value.slice(dot + 1)), Buffer.from(this.#mac('session', body)))) return null;
    try {
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { s?: unknown; e?: unknown };
      if (typeof claims.s !== 'string' || typeof claims.e !== 'number' || claims.e <= now) return null;
      return { kind: 'session', sessionId: claims.s, expiresAt: claims.e };
    } catch {
      return null;
    }
  }

  #mac(purpose: string, text: string): string {
    return createHmac('sha256', this.#key).update(`${purpose}:`).update(text).digest('base64url');
  }

  #cookie(value: string, maxAge: number): string {
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${this.#secure ? '; Secure' : ''}`;
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
