/**
 * The operator password's guessing limits (api/loginLimits.ts) against hostile clients, over real
 * HTTP to a real gateway: clients come from several loopback addresses (127.0.0.N, each a TCP peer
 * of its own, as separate hosts would be). Each test has a gateway of its own, so its counts start
 * from zero (they live in the gateway process).
 *
 * - one address guessing for many accounts (usernames in Basic headers, Bearer guesses, logins)
 *   is stopped after 30 failures, whatever it names;
 * - one account guessed from many addresses, each under the per-address limit, is stopped after
 *   300 failures for every address, a new one too;
 * - `X-Forwarded-For` is not trusted from a peer that is not a trusted proxy (`trusted_proxies`): a
 *   client cannot pick the address it is counted under, nor get another address locked out;
 * - behind a trusted proxy, each client it names is counted on its own (one guessing does not lock
 *   out the others), and what a client writes into the header itself is not believed;
 * - a correct password while limited is refused with 429 and Retry-After and gets no session;
 * - huge and odd login bodies are refused with a 400/413 naming the place, show no internals, are
 *   not counted as guesses and set no cookie.
 */
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LOGIN_LIMITS } from '../api/loginLimits.ts';
import type { Gateway } from '../gateway/server.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'operator-password-for-limit-tests';
/** What no answer may show: SQL, a stack frame, a file path, the database's own words. */
const INTERNALS = /\b(select|insert|update|delete)\b.*\b(from|into|set)\b|\bat \S+ \(|\/work\/|node_modules|\.ts:\d+|SQLITE|postgres|ZodError|TypeError/i;
const PER_ADDRESS = DEFAULT_LOGIN_LIMITS.perAddress.failures;
const PER_ACCOUNT = DEFAULT_LOGIN_LIMITS.perAccount.failures;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: { code?: string; message?: string } | null;
}

describe('operator password limits against hostile clients', () => {
  let stack: Stack;
  let gateway: Gateway;

  /** A request from the loopback address `from` (127.0.0.N): the gateway sees it as that client. */
  function send(from: string, method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
    const url = new URL(path, gateway.url);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method,
          localAddress: from,
          headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const json = (res.headers['content-type'] ?? '').startsWith('application/json') ? (JSON.parse(text) as Answer['json']) : null;
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  }
  const login = (from: string, body: unknown, headers: Record<string, string> = {}) =>
    send(from, 'POST', '/api/v1/session', { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), headers });
  const bearer = (from: string, token: string) => send(from, 'GET', '/api/v1/runs', { headers: { authorization: `Bearer ${token}` } });

  function expectLimited(answer: Answer, what: string): void {
    expect(answer.status, `${what}: ${answer.text}`).toBe(429);
    expect(answer.json, what).toMatchObject({ code: 'too_many_attempts' });
    expect(Number(answer.headers['retry-after']), what).toBeGreaterThan(0);
    expect(answer.headers['set-cookie'], what).toBeUndefined();
  }

  beforeAll(async () => {
    stack = await startStack('sqlite', { worker: false });
    stack.settings.operatorPassword = PASSWORD;
  });
  afterEach(async () => {
    await gateway?.close();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('one address guessing for many accounts is stopped after 30 failures, whatever account or way it names', async () => {
    gateway = await startTestGateway(stack);
    const from = '127.0.0.11';
    for (let i = 0; i < PER_ADDRESS; i++) {
      const user = `user-${i}`;
      const answer =
        i % 3 === 0
          ? await send(from, 'GET', '/api/v1/runs', { headers: { authorization: `Basic ${Buffer.from(`${user}:guess-${i}`).toString('base64')}` } })
          : i % 3 === 1
            ? await bearer(from, `${user}:guess-${i}`)
            : await login(from, { password: `guess-${i}` });
      expect(answer.status, `attempt ${i}: ${answer.text}`).toBe(401);
    }
    // Naming an account the console does not have (a username) is no way around it: refused as invalid, not tried.
    const withUser = await login(from, { username: 'admin', password: PASSWORD });
    expect(withUser.status).toBe(400);
    expect(withUser.json!.message).toContain('username');
    expectLimited(await login(from, { password: PASSWORD }), 'the right password at login');
    expectLimited(await bearer(from, PASSWORD), 'the right password as a Bearer token');
    expectLimited(await send(from, 'GET', '/api/v1/openapi.json', { headers: { authorization: `Bearer ${PASSWORD}` } }), 'the OpenAPI document');
    // Another address is not limited by this one's failures.
    const other = await login('127.0.0.12', { password: PASSWORD });
    expect(other.status).toBe(201);
    expect(String(other.headers['set-cookie'])).toContain('hitloop_session=');
  });

  it('one account guessed from many addresses, each under its own limit, is stopped everywhere after 300 failures', async () => {
    gateway = await startTestGateway(stack);
    const perAddress = PER_ADDRESS - 2;
    const addresses = Array.from({ length: Math.ceil(PER_ACCOUNT / perAddress) }, (_, i) => `127.0.1.${i + 1}`);
    let failures = 0;
    for (const from of addresses) {
      for (let i = 0; i < perAddress && failures < PER_ACCOUNT; i++, failures++) {
        const answer = i % 2 ? await bearer(from, `guess-${failures}`) : await login(from, { password: `guess-${failures}` });
        expect(answer.status, `failure ${failures} from ${from}: ${answer.text}`).toBe(401);
      }
    }
    expect(failures).toBe(PER_ACCOUNT);
    // Every address now, the ones that tried and one that never did, the right password too.
    for (const from of [addresses[0]!, addresses.at(-1)!, '127.0.2.99']) {
      const refused = await login(from, { password: PASSWORD });
      expectLimited(refused, `the right password from ${from}`);
      // The account's window (an hour), not an address's (ten minutes).
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(DEFAULT_LOGIN_LIMITS.perAddress.windowSeconds);
      expectLimited(await bearer(from, PASSWORD), `a Bearer token from ${from}`);
    }
  }, 120_000);

  it('X-Forwarded-For is not trusted: a client is counted under its own address and cannot get another locked out', async () => {
    gateway = await startTestGateway(stack);
    const from = '127.0.0.21';
    const victim = '127.0.0.22';
    for (let i = 0; i < PER_ADDRESS; i++) {
      // A new claimed address every time (and the victim's): were it believed, no count would fill up.
      const forwarded = i % 2 ? `10.9.${i}.1` : victim;
      const answer = await login(from, { password: `guess-${i}` }, { 'x-forwarded-for': forwarded, forwarded: `for=${forwarded}`, 'x-real-ip': forwarded });
      expect(answer.status, `attempt ${i}`).toBe(401);
    }
    expectLimited(await login(from, { password: PASSWORD }, { 'x-forwarded-for': '10.200.0.1' }), 'a fresh claimed address');
    expectLimited(await bearer(from, PASSWORD), 'a Bearer token');
    // The address the guesses claimed to come from was never counted.
    const victimLogin = await login(victim, { password: PASSWORD });
    expect(victimLogin.status).toBe(201);
  });

  it('behind a trusted proxy each client is counted under the address the proxy names, and cannot rename itself', async () => {
    const proxy = '127.0.0.41';
    stack.settings.trustedProxies = [proxy];
    try {
      gateway = await startTestGateway(stack);
    } finally {
      delete stack.settings.trustedProxies;
    }
    // As HAProxy's `option forwardfor` sends it: whatever the client wrote, then the address the proxy saw.
    const viaProxy = (client: string, written?: string) => ({ 'x-forwarded-for': written ? `${written}, ${client}` : client });
    const guesser = '203.0.113.7';
    for (let i = 0; i < PER_ADDRESS; i++) {
      // Each time claiming another address in front of its own: the proxy's last hop is what counts.
      const answer = await login(proxy, { password: `guess-${i}` }, viaProxy(guesser, `198.51.100.${i}`));
      expect(answer.status, `attempt ${i}`).toBe(401);
    }
    expectLimited(await login(proxy, { password: PASSWORD }, viaProxy(guesser)), 'the guesser, through the proxy');
    expectLimited(await login(proxy, { password: PASSWORD }, viaProxy(guesser, '198.51.100.200')), 'the guesser naming a new address');
    // Another client behind the same proxy is not locked out by the guesser.
    const neighbour = await login(proxy, { password: PASSWORD }, viaProxy('203.0.113.8'));
    expect(neighbour.status, neighbour.text).toBe(201);
    // A peer that is not the proxy is counted under its own address, whatever header it sends.
    const direct = await login('127.0.0.42', { password: PASSWORD }, viaProxy(guesser));
    expect(direct.status, direct.text).toBe(201);
    // A header that names no address: the proxy's own connection is counted (here not yet limited).
    const garbage = await login(proxy, { password: PASSWORD }, { 'x-forwarded-for': 'not-an-address' });
    expect(garbage.status, garbage.text).toBe(201);
  });

  it('huge and odd login bodies: a clean 400 or 413 naming the place, no internals, no cookie, not counted as guesses', async () => {
    gateway = await startTestGateway(stack);
    const from = '127.0.0.31';
    const cases: Array<{ what: string; body: string | Buffer; status: number; names?: string }> = [
      { what: 'a password of 1,001 characters', body: JSON.stringify({ password: 'p'.repeat(1001) }), status: 400, names: 'body.password' },
      { what: 'a password of 200 KiB', body: JSON.stringify({ password: 'p'.repeat(200 * 1024) }), status: 400, names: 'body.password' },
      { what: 'a password of 2 MiB', body: JSON.stringify({ password: 'p'.repeat(2 * 1024 * 1024) }), status: 413 },
      { what: 'a username of 200 KiB', body: JSON.stringify({ username: 'u'.repeat(200 * 1024), password: 'x' }), status: 400, names: 'username' },
      { what: 'an empty password', body: JSON.stringify({ password: '' }), status: 400, names: 'body.password' },
      { what: 'a number as password', body: JSON.stringify({ password: 12345678 }), status: 400, names: 'body.password' },
      { what: 'an array as password', body: JSON.stringify({ password: [PASSWORD] }), status: 400, names: 'body.password' },
      { what: 'an object as password', body: JSON.stringify({ password: { $ne: '' } }), status: 400, names: 'body.password' },
      { what: 'null as password', body: JSON.stringify({ password: null }), status: 400, names: 'body.password' },
      { what: 'a NUL in the password', body: JSON.stringify({ password: `${PASSWORD}\u0000` }), status: 400, names: 'body.password' },
      { what: 'a lone surrogate in the password', body: `{"password":"${PASSWORD}\\ud800"}`, status: 400, names: 'body.password' },
      { what: 'a body that is an array', body: JSON.stringify([{ password: PASSWORD }]), status: 400, names: 'body' },
      { what: 'a body that is a string', body: JSON.stringify(PASSWORD), status: 400, names: 'body' },
      { what: 'a body that is not JSON', body: `password=${PASSWORD}`, status: 400 },
      { what: 'bytes that are not UTF-8', body: Buffer.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), status: 400 },
      { what: 'a prototype key', body: `{"password":"x","__proto__":{"admin":true}}`, status: 400, names: '__proto__' },
      { what: 'JSON nested 50,000 levels deep', body: `{"password":${'['.repeat(50_000)}${']'.repeat(50_000)}}`, status: 400, names: 'body.password' },
    ];
    // More of them than the per-address limit: none may count as a wrong password.
    for (let round = 0; round < 2; round++) {
      for (const c of cases) {
        const answer = await login(from, c.body);
        expect(answer.status, `${c.what}: ${answer.text.slice(0, 300)}`).toBe(c.status);
        expect(answer.json, c.what).toMatchObject({ code: expect.any(String), message: expect.any(String) });
        expect(answer.json!.message, c.what).not.toMatch(INTERNALS);
        expect((answer.json!.message ?? '').length, c.what).toBeLessThan(1000);
        if (c.names) expect(answer.json!.message, c.what).toContain(c.names);
        expect(answer.headers['set-cookie'], c.what).toBeUndefined();
      }
    }
    expect(cases.length * 2).toBeGreaterThan(PER_ADDRESS);
    // A huge Authorization header is a guess like any other (counted once), or refused by HTTP itself.
    const hugeBearer = await bearer(from, 'b'.repeat(12 * 1024));
    expect(hugeBearer.status).toBe(401);
    const right = await login(from, { password: PASSWORD });
    expect(right.status, right.text).toBe(201);
    expect(String(right.headers['set-cookie'])).toContain('HttpOnly');
  }, 120_000);
});
