/**
 * The JSON API (`/api/v1`) of a real gateway on a real Temporal server and SQLite: each endpoint
 * once with its answer, each refused without a session or token (401) and, for changes, with a
 * session but without its CSRF token (403), changing nothing. Every answer of this file is checked
 * against the OpenAPI document the running API serves (itself checked with an OpenAPI validator).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorAuth } from '../api/auth.ts';
import { LoginLimiter } from '../api/loginLimits.ts';
import { ApiError } from '../api/errors.ts';
import { STORABLE_TEXT_PATTERN } from '../model/storableJson.ts';
import type { Gateway } from '../gateway/server.ts';
import { Bonus, GrantedQualification, ProviderCall, Review, TaskRun, Worker } from '../model/entities.ts';
import { completeUnit, type Assigned } from './support/completeUnits.ts';
import { formConfig } from './support/configs.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'operator-password-for-tests';
const SCRIPT = '<script>window.__pwned = 1</script>';

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

type OpenApiDoc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>; components: object };

describe('operator JSON API', () => {
  let stack: Stack;
  let gateway: Gateway;
  let runId: string;
  let units: Assigned[];
  let doc: OpenApiDoc;
  const checked: string[] = [];
  const ajv = new Ajv2020({ strict: false, allErrors: true });

  /** The OpenAPI operation of a concrete request, and its response schema for `status`. */
  function responseSchema(method: string, pathname: string, status: number): object | null | undefined {
    for (const [template, operations] of Object.entries(doc.paths)) {
      const pattern = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`);
      if (!pattern.test(pathname)) continue;
      const operation = operations[method.toLowerCase()];
      if (!operation) continue;
      const response = operation.responses[String(status)];
      if (!response) return undefined;
      return response.content?.['application/json']?.schema ?? null;
    }
    return undefined;
  }

  async function call(
    method: string,
    path: string,
    opts: { body?: unknown; rawBody?: string; cookie?: string; csrf?: string; bearer?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined || opts.rawBody !== undefined) headers['content-type'] = 'application/json';
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
    if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers,
      body: opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    });
    const text = await response.text();
    const isJson = (response.headers.get('content-type') ?? '').startsWith('application/json');
    const answer = { status: response.status, headers: response.headers, body: isJson ? JSON.parse(text) : undefined, text };
    if (doc) {
      const pathname = path.split('?', 1)[0]!;
      const schema = responseSchema(method, pathname, answer.status);
      expect(schema, `${method} ${pathname} answered ${answer.status}, which the OpenAPI document does not list`).not.toBeUndefined();
      if (schema) {
        const validate = ajv.compile({ ...schema, components: doc.components });
        expect(validate(answer.body), `${method} ${pathname} ${answer.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
        checked.push(`${method} ${pathname} ${answer.status}`);
      }
    }
    return answer;
  }

  let session: { cookie: string; csrf: string };

  beforeAll(async () => {
    stack = await startStack('sqlite');
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    const launched = await stack.operator.launch(formConfig({ data: [{ text: SCRIPT }, { text: 'two' }, { text: 'three' }, { text: 'four' }] }, 4));
    runId = launched.runId;
    const c = stack.env.client;
    units = [];
    for (const worker of ['api-ann', 'api-bob', 'api-cat']) units.push(await completeUnit(c, stack.db, runId, worker, { label: 'positive' }));
  });
  afterAll(async () => {
    await gateway?.close();
    await stack?.stop();
  });

  it('serves an OpenAPI 3.1 document that an OpenAPI validator accepts', async () => {
    const answer = await call('GET', '/api/v1/openapi.json', { bearer: PASSWORD });
    expect(answer.status).toBe(200);
    const result = await new Validator().validate(answer.body as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    doc = answer.body as OpenApiDoc;
    expect(Object.keys(doc.paths).length).toBeGreaterThanOrEqual(12);
  });

  it('the document says what the API refuses: NUL in any string read, an offset that is not digits; a body only where {} is not enough', async () => {
    type Schema = Record<string, unknown>;
    type Operation = { parameters?: Array<{ schema: Schema }>; requestBody?: { required: boolean; content: Record<string, { schema: Schema }> } };
    const components = (doc.components as { schemas: Record<string, Schema> }).schemas;
    const strings: Schema[] = [];
    const collect = (schema: unknown): void => {
      if (Array.isArray(schema)) return schema.forEach(collect);
      if (typeof schema !== 'object' || schema === null) return;
      const node = schema as Schema;
      if (typeof node.$ref === 'string') return collect(components[node.$ref.split('/').pop()!]);
      if (node.type === 'string' && node.enum === undefined) strings.push(node);
      Object.values(node).forEach(collect);
    };
    const operations = Object.values(doc.paths as unknown as Record<string, Record<string, Operation>>).flatMap((ops) => Object.values(ops));
    for (const operation of operations) {
      for (const parameter of operation.parameters ?? []) collect(parameter.schema);
      collect(operation.requestBody?.content['application/json']?.schema);
    }
    expect(strings.length).toBeGreaterThan(20);
    for (const schema of strings) {
      const patterns = [schema.pattern, ...((schema.allOf as Schema[] | undefined) ?? []).map((part) => part.pattern)];
      expect(patterns, JSON.stringify(schema)).toContain(STORABLE_TEXT_PATTERN);
    }
    const shutdown = (doc.paths as unknown as Record<string, Record<string, Operation>>)['/api/v1/runs/{runId}/shutdown']!.post!;
    expect(shutdown.requestBody?.required).toBe(false);
    const reviews = (doc.paths as unknown as Record<string, Record<string, Operation>>)['/api/v1/runs/{runId}/reviews']!.post!;
    expect(reviews.requestBody?.required).toBe(true);

    for (const offset of ['', ' 1', '1e1', '0x1', '-1']) {
      const answer = await call('GET', `/api/v1/runs/${runId}/units?offset=${encodeURIComponent(offset)}`, { bearer: PASSWORD });
      expect(answer.status, offset).toBe(400);
      expect((answer.body as { message: string }).message).toContain('query.offset: offset must be a whole number >= 0');
    }
    const nul = await call('GET', `/api/v1/runs/${runId}/units?worker=%00`, { bearer: PASSWORD });
    expect(nul.status).toBe(400);
    expect((nul.body as { message: string }).message).toContain('NUL');
  });

  it('logs in: wrong password 401; right one sets an HTTP-only SameSite=Strict cookie and answers a CSRF token', async () => {
    const wrong = await call('POST', '/api/v1/session', { body: { password: 'nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ code: 'wrong_password' });
    const invalid = await call('POST', '/api/v1/session', { body: {} });
    expect(invalid.status).toBe(400);
    expect((invalid.body as { message: string }).message).toContain('body.password');
    const ok = await call('POST', '/api/v1/session', { body: { password: PASSWORD } });
    expect(ok.status).toBe(201);
    const setCookie = ok.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const csrf = (ok.body as { csrfToken: string }).csrfToken;
    expect(csrf.length).toBeGreaterThan(20);
    session = { cookie: setCookie.split(';', 1)[0]!, csrf };
    const again = await call('GET', '/api/v1/session', { cookie: session.cookie });
    expect(again.body).toMatchObject({ authenticated: true, via: 'session', csrfToken: csrf });
    const tampered = await call('GET', '/api/v1/session', { cookie: `${session.cookie.slice(0, -2)}xx` });
    expect(tampered.status).toBe(401);
  });

  it('refuses every endpoint without credentials (401) and every change without the CSRF token (403); nothing changes', async () => {
    const before = { reviews: await stack.db.em().count(Review), bonuses: await stack.db.em().count(Bonus), workers: await stack.db.em().count(Worker) };
    const bodies: Record<string, unknown> = {
      reviews: { decision: 'approve', unitIds: [units[0]!.unitId], requestKey: 'no-auth' },
      bonuses: { unitId: units[0]!.unitId, amount: 1, reason: 'x', requestKey: 'no-auth' },
      limits: { max_num_concurrent_units: 1 },
    };
    let refused = 0;
    for (const [template, operations] of Object.entries(doc.paths)) {
      for (const method of Object.keys(operations)) {
        if (template === '/api/v1/session' && method === 'post') continue;
        const path = template.replace('{runId}', runId).replace('{name}', 'q-none');
        const body = method === 'get' ? undefined : (bodies[template.split('/').pop()!] ?? {});
        const anonymous = await call(method.toUpperCase(), path, { body });
        expect(anonymous.status, `${method} ${path} without credentials`).toBe(401);
        const badToken = await call(method.toUpperCase(), path, { body, bearer: 'not-the-password' });
        expect(badToken.status, `${method} ${path} with a wrong token`).toBe(401);
        if (method !== 'get') {
          const noCsrf = await call(method.toUpperCase(), path, { body, cookie: session.cookie });
          expect(noCsrf.status, `${method} ${path} without CSRF`).toBe(403);
          expect(noCsrf.body).toMatchObject({ code: 'csrf' });
          const crossSite = await call(method.toUpperCase(), path, { body, cookie: session.cookie, csrf: session.csrf, headers: { origin: 'https://evil.example' } });
          expect(crossSite.status, `${method} ${path} from another origin`).toBe(403);
        }
        refused++;
      }
    }
    expect(refused).toBeGreaterThanOrEqual(14);
    expect({ reviews: await stack.db.em().count(Review), bonuses: await stack.db.em().count(Bonus), workers: await stack.db.em().count(Worker) }).toEqual(before);
  });

  it('an API without an operator password is off for everyone (503)', () => {
    const auth = new OperatorAuth({ secret: 's', password: undefined, secure: false });
    const verdict = auth.check({ headers: { authorization: `Bearer ${PASSWORD}` } } as never, false);
    expect(verdict).toMatchObject({ ok: false, status: 503, code: 'console_disabled' });
  });

  it('login limits count wrong passwords per client address and per account; a success clears the address', async () => {
    const limiter = new LoginLimiter({ perAddress: { failures: 2, windowSeconds: 60 }, perAccount: { failures: 4, windowSeconds: 120 } });
    await limiter.failed('10.0.0.1');
    await limiter.succeeded('10.0.0.1');
    await limiter.failed('10.0.0.1');
    expect(await limiter.retryAfter('10.0.0.1')).toBe(0);
    await limiter.failed('10.0.0.1');
    const wait = await limiter.retryAfter('10.0.0.1');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    const refusal = await limiter.admit('10.0.0.1').catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(ApiError);
    expect(refusal).toMatchObject({ status: 429, code: 'too_many_attempts', headers: { 'retry-after': String(wait) } });
    // Another address may still try, until the account's own count is used up (3 failures + 1 = 4 on the account).
    expect(await limiter.retryAfter('10.0.0.2')).toBe(0);
    await limiter.failed('10.0.0.2');
    expect(await limiter.retryAfter('10.0.0.3')).toBeGreaterThan(60);
    await expect(limiter.admit('10.0.0.3')).rejects.toMatchObject({ status: 429 });
    await expect(limiter.admit('10.0.0.3', 'another-account')).resolves.toBeUndefined();
  });

  it('GET /runs lists the run once; GET /runs/{runId} shows progress, live caps and time left; an unknown run is 404', async () => {
    const list = await call('GET', '/api/v1/runs', { cookie: session.cookie });
    expect(list.status).toBe(200);
    const rows = (list.body as { runs: Array<{ runId: string }> }).runs.filter((r) => r.runId === runId);
    expect(rows).toHaveLength(1);
    const detail = await call('GET', `/api/v1/runs/${runId}`, { bearer: PASSWORD });
    expect(detail.body).toMatchObject({ runId, status: 'running', doneUnits: 3, totalUnits: 4, taskTitle: 'Label a sentence', limits: { task_reward: 0.5 } });
    expect((detail.body as { secondsLeft: number }).secondsLeft).toBeGreaterThan(0);
    const missing = await call('GET', '/api/v1/runs/r-missing', { bearer: PASSWORD });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'not_found' });
  });

  it('PATCH /runs/{runId}/limits changes a cap live; a bad value is refused with the key named and changes nothing', async () => {
    const ok = await call('PATCH', `/api/v1/runs/${runId}/limits`, { body: { max_num_concurrent_units: 7 }, cookie: session.cookie, csrf: session.csrf });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ limits: { max_num_concurrent_units: 7 } });
    const bad = await call('PATCH', `/api/v1/runs/${runId}/limits`, { body: { max_num_concurrent_units: -1 }, bearer: PASSWORD });
    expect(bad.status).toBe(400);
    expect((bad.body as { message: string }).message).toContain('body.max_num_concurrent_units');
    const unknown = await call('PATCH', `/api/v1/runs/${runId}/limits`, { body: { wings: 2 }, bearer: PASSWORD });
    expect(unknown.status).toBe(400);
    // Amounts the database would store as another amount (1e-7 as 0) or cannot hold: refused, nothing changed.
    for (const [key, amount, says] of [
      ['max_spend', 1e-7, '4 decimal places'],
      ['max_spend', 5e-324, '4 decimal places'],
      ['max_spend', 0.12345, '4 decimal places'],
      ['max_spend', 1e10, 'below 10,000,000,000'],
      ['task_reward', 1e-7, '4 decimal places'],
    ] as const) {
      const refused = await call('PATCH', `/api/v1/runs/${runId}/limits`, { body: { [key]: amount }, bearer: PASSWORD });
      expect(refused.status, refused.text).toBe(400);
      expect((refused.body as { message: string }).message).toContain(`body.${key}`);
      expect((refused.body as { message: string }).message).toContain(says);
    }
    expect(await stack.db.em().findOneOrFail(TaskRun, runId, { fields: ['maxSpend', 'reward'] })).toMatchObject({ maxSpend: null, reward: 0.5 });
    const broken = await call('PATCH', `/api/v1/runs/${runId}/limits`, { rawBody: '{"max_num', bearer: PASSWORD });
    expect(broken.status).toBe(400);
    expect(broken.body).toMatchObject({ code: 'invalid_json' });
    const detail = await call('GET', `/api/v1/runs/${runId}`, { bearer: PASSWORD });
    expect(detail.body).toMatchObject({ limits: { max_num_concurrent_units: 7, task_reward: 0.5 } });
    expect((detail.body as { limits: Record<string, unknown> }).limits.max_spend).toBeUndefined();
  });

  it('GET /runs/{runId}/units pages the submitted units with each worker\'s history; item HTML comes back as data, not markup', async () => {
    const first = await call('GET', `/api/v1/runs/${runId}/units?limit=2`, { cookie: session.cookie });
    const page1 = first.body as { units: Array<{ unitId: string; assignmentData: { text: string } }>; more: boolean; workers: Array<{ workerId: string; submitted: number }> };
    expect(page1.units).toHaveLength(2);
    expect(page1.more).toBe(true);
    expect(page1.workers).toHaveLength(2);
    expect(page1.workers[0]!.submitted).toBe(1);
    const second = await call('GET', `/api/v1/runs/${runId}/units?limit=2&offset=2`, { cookie: session.cookie });
    const page2 = second.body as typeof page1;
    expect(page2.units).toHaveLength(1);
    expect(page2.more).toBe(false);
    expect([...page1.units, ...page2.units].map((u) => u.unitId).sort()).toEqual(units.map((u) => u.unitId).sort());
    expect([...page1.units, ...page2.units].some((u) => u.assignmentData.text === SCRIPT)).toBe(true);
    const badQuery = await call('GET', `/api/v1/runs/${runId}/units?limit=5000`, { cookie: session.cookie });
    expect(badQuery.status).toBe(400);
    expect((badQuery.body as { message: string }).message).toContain('query.limit');
  });

  it('POST /runs/{runId}/reviews approves once per request key: the same request twice acts once', async () => {
    const unitId = units[0]!.unitId;
    const body = { decision: 'approve', unitIds: [unitId], requestKey: `approve-${unitId}` };
    const [a, b] = await Promise.all([
      call('POST', `/api/v1/runs/${runId}/reviews`, { body, cookie: session.cookie, csrf: session.csrf }),
      call('POST', `/api/v1/runs/${runId}/reviews`, { body, cookie: session.cookie, csrf: session.csrf }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(await stack.db.em().count(Review, { unit: unitId })).toBe(1);
    expect(await stack.db.em().count(ProviderCall, { operation: 'approveWork', target: unitId })).toBe(1);
    const otherDecision = await call('POST', `/api/v1/runs/${runId}/reviews`, { body: { decision: 'reject', unitIds: [unitId], requestKey: 'reject-again' }, bearer: PASSWORD });
    expect(otherDecision.status).toBe(409);
    expect((otherDecision.body as { message: string }).message).toContain('nothing was changed');
    const tooMany = await call('POST', `/api/v1/runs/${runId}/reviews`, { body: { ...body, unitIds: Array.from({ length: 201 }, (_, i) => `u-${i}`) }, bearer: PASSWORD });
    expect(tooMany.status).toBe(400);
  });

  it('POST /runs/{runId}/bonuses pays once for a request key sent twice at once', async () => {
    const unitId = units[1]!.unitId;
    const body = { unitId, amount: 0.25, reason: 'careful work', requestKey: 'api-bonus-1' };
    const answers = await Promise.all([1, 2].map(() => call('POST', `/api/v1/runs/${runId}/bonuses`, { body, cookie: session.cookie, csrf: session.csrf })));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(await stack.db.em().count(Bonus, { unit: unitId })).toBe(1);
    expect(await stack.db.em().count(ProviderCall, { operation: 'payBonus', requestKey: 'api-bonus-1' })).toBe(1);
    const negative = await call('POST', `/api/v1/runs/${runId}/bonuses`, { body: { ...body, amount: -1, requestKey: 'api-bonus-2' }, bearer: PASSWORD });
    expect(negative.status).toBe(400);
    // Amounts the database cannot hold exactly are refused as bad requests, as the document says.
    for (const [amount, says] of [[0.12345, '4 decimal places'], [5e-324, '4 decimal places'], [1e10, 'below 10,000,000,000']] as const) {
      const refused = await call('POST', `/api/v1/runs/${runId}/bonuses`, { body: { ...body, amount, requestKey: `api-bonus-${amount}` }, bearer: PASSWORD });
      expect(refused.status, refused.text).toBe(400);
      expect((refused.body as { message: string }).message).toContain(says);
    }
    expect(await stack.db.em().count(Bonus, { unit: unitId })).toBe(1);
  });

  it('GET /runs/{runId}/export downloads JSON Lines and CSV', async () => {
    const jsonl = await call('GET', `/api/v1/runs/${runId}/export?format=jsonl`, { cookie: session.cookie });
    expect(jsonl.status).toBe(200);
    expect(jsonl.headers.get('content-disposition')).toContain(`${runId}.jsonl`);
    expect(jsonl.text.trim().split('\n')).toHaveLength(3);
    const csv = await call('GET', `/api/v1/runs/${runId}/export?format=csv`, { cookie: session.cookie });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(csv.text.trim().split('\n')).toHaveLength(4);
    const bad = await call('GET', `/api/v1/runs/${runId}/export?format=xml`, { cookie: session.cookie });
    expect(bad.status).toBe(400);
  });

  it('qualifications: create, list, grant, revoke', async () => {
    const created = await call('POST', '/api/v1/qualifications', { body: { name: 'api-skilled', description: 'knows the task' }, cookie: session.cookie, csrf: session.csrf });
    expect(created.status).toBe(201);
    const duplicate = await call('POST', '/api/v1/qualifications', { body: { name: 'api-skilled' }, bearer: PASSWORD });
    expect(duplicate.status).toBe(409);
    const granted = await call('POST', '/api/v1/qualifications/api-skilled/grants', { body: { provider: 'mock', providerWorkerId: 'api-ann', value: 3 }, cookie: session.cookie, csrf: session.csrf });
    expect(granted.body).toMatchObject({ value: 3, changed: true });
    const list = await call('GET', '/api/v1/qualifications', { cookie: session.cookie });
    expect((list.body as { grants: Array<{ qualification: string; value: number }> }).grants).toContainEqual(expect.objectContaining({ qualification: 'api-skilled', value: 3 }));
    const revoked = await call('POST', '/api/v1/qualifications/api-skilled/revocations', { body: { provider: 'mock', providerWorkerId: 'api-ann' }, bearer: PASSWORD });
    expect(revoked.body).toMatchObject({ value: null, previous: 3, changed: true });
    expect(await stack.db.em().count(GrantedQualification, { qualification: { name: 'api-skilled' } })).toBe(0);
    const unknown = await call('POST', '/api/v1/qualifications/api-nothing/grants', { body: { provider: 'mock', providerWorkerId: 'api-ann', value: 1 }, bearer: PASSWORD });
    expect(unknown.status).toBe(404);
  });

  it('POST /workers/blocks blocks and unblocks a worker', async () => {
    const blocked = await call('POST', '/api/v1/workers/blocks', { body: { provider: 'mock', providerWorkerId: 'api-cat', blocked: true, reason: 'spam' }, cookie: session.cookie, csrf: session.csrf });
    expect(blocked.body).toMatchObject({ blocked: true, changed: true });
    expect((await stack.db.em().findOneOrFail(Worker, { providerWorkerId: 'api-cat' })).blocked).toBe(true);
    const unblocked = await call('POST', '/api/v1/workers/blocks', { body: { provider: 'mock', providerWorkerId: 'api-cat', blocked: false }, bearer: PASSWORD });
    expect(unblocked.body).toMatchObject({ blocked: false, changed: true });
    const badProvider = await call('POST', '/api/v1/workers/blocks', { body: { provider: 'nowhere', providerWorkerId: 'x', blocked: true }, bearer: PASSWORD });
    expect(badProvider.status).toBe(409);
  });

  it('the console page is never framed and is served with its assets', async () => {
    const page = await fetch(`${gateway.url}/admin`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('/admin/assets/console.js');
    expect((await fetch(`${gateway.url}/admin/assets/console.js`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/admin/assets/..%2Fpackage.json`)).status).toBe(404);
    const unknownApi = await fetch(`${gateway.url}/api/v1/nothing`);
    expect(unknownApi.status).toBe(404);
    expect(await unknownApi.json()).toMatchObject({ code: 'not_found' });
  });

  it('DELETE /session logs out; POST /runs/{runId}/shutdown ends the run (a blank reason is refused, no body is fine)', async () => {
    const blank = await call('POST', `/api/v1/runs/${runId}/shutdown`, { body: { reason: ' \t ' }, cookie: session.cookie, csrf: session.csrf });
    expect(blank.status).toBe(400);
    expect((blank.body as { message: string }).message).toContain('body.reason: a shutdown reason, when given, is not blank');
    expect((await stack.operator.status(runId)).status).toBe('running');
    const shut = await call('POST', `/api/v1/runs/${runId}/shutdown`, { cookie: session.cookie, csrf: session.csrf });
    expect(shut.status).toBe(200);
    expect(['cancelled', 'completed']).toContain((shut.body as { status: string }).status);
    await eventually(async () => ((await stack.operator.status(runId)).status === 'cancelled' ? true : undefined), 'the run to be cancelled');
    const out = await call('DELETE', '/api/v1/session', { cookie: session.cookie, csrf: session.csrf });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect(checked.length).toBeGreaterThan(40);
  });

  it('wrong passwords from one address end in 429 with Retry-After, for logins and Bearer tokens alike, the right password too', async () => {
    let answer: Answer | undefined;
    for (let attempt = 0; attempt < 31; attempt++) {
      answer = await call('POST', '/api/v1/session', { body: { password: `guess-${attempt}` } });
      if (answer.status !== 401) break;
    }
    expect(answer!.status).toBe(429);
    expect(answer!.body).toMatchObject({ code: 'too_many_attempts' });
    expect(Number(answer!.headers.get('retry-after'))).toBeGreaterThan(0);
    const right = await call('POST', '/api/v1/session', { body: { password: PASSWORD } });
    expect(right.status).toBe(429);
    expect(right.headers.get('set-cookie')).toBeNull();
    const bearer = await call('GET', '/api/v1/runs', { bearer: PASSWORD });
    expect(bearer.status).toBe(429);
    expect(Number(bearer.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
