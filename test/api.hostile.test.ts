/**
 * Hostile and broken input to the operator HTTP API (`/api/v1`) on each database (issue 15):
 * NUL characters, lone surrogates, huge and deeply nested JSON bodies, NULs in the path and the
 * query: every such request is a clean 4xx with a JSON error naming the place, and changes nothing.
 * Then a real database fault (a table renamed under the running gateway): the API, the task page
 * and the WebSocket answer a plain sentence with an error id, no SQL, stack or path, and the log
 * line with that id holds the database's error.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Bonus, GrantedQualification, Qualification, Review, Worker } from '../model/entities.ts';
import { completeUnit, type Assigned } from './support/completeUnits.ts';
import { formConfig } from './support/configs.ts';
import { connect, startTestGateway } from './gateway.helpers.ts';
import { startStack, type Dialect, type Stack } from './support/stack.ts';

const PASSWORD = 'operator-password-for-hostile-tests';
/** What no answer may show: SQL, a stack frame, a file path, the database's own words. */
const INTERNALS = /\b(select|insert|update|delete)\b.*\b(from|into|set)\b|relation "|no such table|\bat \S+ \(|\/work\/|node_modules|\.ts:\d+|SQLITE|postgres/i;

describe.each<Dialect>(['sqlite', 'postgresql'])('operator API against hostile input on %s', (dialect) => {
  let stack: Stack;
  let gateway: Gateway;
  let runId: string;
  let unit: Assigned;
  const logLines: string[] = [];

  beforeAll(async () => {
    stack = await startStack(dialect);
    stack.settings.operatorPassword = PASSWORD;
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          logLines.push(chunk.toString());
          done();
        },
      }),
    );
    gateway = await startTestGateway(stack, { log });
    runId = (await stack.operator.launch(formConfig({ task_reward: 0.5, max_spend: 100 }, 2))).runId;
    unit = await completeUnit(stack.env.client, stack.db, runId, `hostile-api-${dialect}`, { label: 'positive' });
  }, 300_000);
  afterAll(async () => {
    await gateway?.close();
    await stack?.stop();
  });

  async function call(method: string, path: string, body?: string): Promise<{ status: number; type: string; json: { code?: string; message?: string } | null; text: string }> {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${PASSWORD}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body,
    });
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    return { status: response.status, type, json: type.startsWith('application/json') ? (JSON.parse(text) as { code?: string; message?: string }) : null, text };
  }

  /** Everything these requests could change. */
  async function counts(): Promise<Record<string, number>> {
    const em = stack.db.em();
    return {
      bonuses: await em.count(Bonus, {}),
      reviews: await em.count(Review, {}),
      qualifications: await em.count(Qualification, {}),
      grants: await em.count(GrantedQualification, {}),
      blocked: await em.count(Worker, { blocked: true }),
    };
  }

  it('refuses NULs, lone surrogates, huge and deeply nested bodies with a clean 4xx JSON error, changing nothing', async () => {
    const before = await counts();
    const key = () => `hostile-${randomUUID()}`;
    const bonus = (reason: string) => JSON.stringify({ unitId: unit.unitId, amount: 0.1, reason, requestKey: key() });
    const nested = (depth: number) => `{"unitId":${'['.repeat(depth)}${']'.repeat(depth)},"amount":0.1,"reason":"x","requestKey":"${key()}"}`;
    const cases: Array<{ what: string; method: string; path: string; body?: string; status: number; names?: string }> = [
      { what: 'NUL in a bonus reason', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: bonus('a\u0000b'), status: 400, names: 'body.reason' },
      { what: 'lone high surrogate in a bonus reason', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: bonus('x').replace('"reason":"x"', '"reason":"x\\ud800"'), status: 400, names: 'body.reason' },
      { what: 'lone low surrogate in a key of the body', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: '{"\\udc00":1}', status: 400, names: 'body' },
      { what: 'NUL in a review note', method: 'POST', path: `/api/v1/runs/${runId}/reviews`, body: JSON.stringify({ decision: 'approve', unitIds: [unit.unitId], note: '\u0000', requestKey: key() }), status: 400, names: 'body.note' },
      { what: 'NUL in a unit id', method: 'POST', path: `/api/v1/runs/${runId}/reviews`, body: JSON.stringify({ decision: 'approve', unitIds: [`${unit.unitId}\u0000`], requestKey: key() }), status: 400, names: 'body.unitIds.0' },
      { what: 'NUL in a qualification name', method: 'POST', path: '/api/v1/qualifications', body: JSON.stringify({ name: 'q\u0000' }), status: 400, names: 'body.name' },
      { what: 'lone surrogate in a qualification description', method: 'POST', path: '/api/v1/qualifications', body: '{"name":"q-ok","description":"\\udfff"}', status: 400, names: 'body.description' },
      { what: 'NUL in a worker id to block', method: 'POST', path: '/api/v1/workers/blocks', body: JSON.stringify({ provider: 'mock', providerWorkerId: 'w\u0000', blocked: true }), status: 400, names: 'body.providerWorkerId' },
      { what: 'NUL in a grant\'s qualification (path)', method: 'POST', path: '/api/v1/qualifications/q%00x/grants', body: JSON.stringify({ provider: 'mock', providerWorkerId: 'w', value: 1 }), status: 400, names: 'path.name' },
      { what: 'NUL in a run id (path)', method: 'GET', path: '/api/v1/runs/r%00x', status: 400, names: 'path.runId' },
      { what: 'NUL in a run id of a change (path)', method: 'POST', path: '/api/v1/runs/r%00x/shutdown', body: '{}', status: 400, names: 'path.runId' },
      { what: 'NUL in the query', method: 'GET', path: `/api/v1/runs/${runId}/units?worker=%00`, status: 400, names: 'query.worker' },
      { what: 'a raw NUL byte in the JSON text', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: '{"reason":"a\u0000"}', status: 400 },
      { what: 'deeply nested JSON (10,000 levels)', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: nested(10_000), status: 400, names: 'body.unitId' },
      { what: 'deeply nested JSON (100,000 levels)', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: nested(100_000), status: 400, names: 'body.unitId' },
      { what: 'a 1 MiB body', method: 'POST', path: `/api/v1/runs/${runId}/bonuses`, body: bonus('x'.repeat(1024 * 1024)), status: 413 },
      { what: 'a 20 MiB body', method: 'POST', path: '/api/v1/qualifications', body: JSON.stringify({ name: 'big', description: 'y'.repeat(20 * 1024 * 1024) }), status: 413 },
    ];
    for (const c of cases) {
      const answer = await call(c.method, c.path, c.body);
      expect(answer.status, `${c.what}: ${answer.text.slice(0, 300)}`).toBe(c.status);
      expect(answer.type, c.what).toMatch(/^application\/json/);
      expect(answer.json, c.what).toMatchObject({ code: expect.any(String), message: expect.any(String) });
      expect(answer.json!.message, c.what).not.toMatch(INTERNALS);
      if (c.names) expect(answer.json!.message, c.what).toContain(c.names);
    }
    expect(await counts()).toEqual(before);
    // The API still serves after all of it.
    expect((await call('GET', `/api/v1/runs/${runId}`)).status).toBe(200);
  }, 300_000);

  it('a database fault under the serving gateway: a sentence with an error id, the detail in the log line of that id', async () => {
    const connection = stack.db.em().getConnection();
    await connection.execute('alter table task_run rename to task_run_moved');
    try {
      const errorIdIn = (text: string): string => {
        const id = /error ([0-9a-f]{12})/.exec(text)?.[1];
        expect(id, `an error id in: ${text}`).toBeDefined();
        return id!;
      };
      const loggedWith = (errorId: string): string => logLines.filter((l) => l.includes(errorId)).join('\n');
      const missingTable = /task_run/;

      const api = await call('GET', `/api/v1/runs/${runId}`);
      expect(api.status).toBe(500);
      expect(api.json).toMatchObject({ code: 'internal' });
      expect(api.json!.message).not.toMatch(INTERNALS);
      expect(loggedWith(errorIdIn(api.json!.message!))).toMatch(missingTable);

      const page = await fetch(`${gateway.url}/task/r-never-cached-${dialect}`);
      const pageText = await page.text();
      expect(page.status).toBe(500);
      expect(pageText).not.toMatch(INTERNALS);
      expect(loggedWith(errorIdIn(pageText))).toMatch(missingTable);

      const conn = await connect(gateway);
      try {
        conn.register(`r-never-cached-ws-${dialect}`, { worker_id: 'fault-worker' }, randomUUID());
        const reply = await conn.expect((p) => p.type === 'error' || p.type === 'agent' || p.type === 'refused', 60_000, 'register answer');
        expect(reply).toMatchObject({ type: 'error', code: 'internal', errorId: expect.stringMatching(/^[0-9a-f]{12}$/) });
        const message = (reply as { message: string }).message;
        expect(message).not.toMatch(INTERNALS);
        expect(loggedWith((reply as { errorId: string }).errorId)).toMatch(missingTable);
      } finally {
        conn.close();
      }
    } finally {
      await connection.execute('alter table task_run_moved rename to task_run');
    }
    // Healed: the same requests answer again.
    expect((await call('GET', `/api/v1/runs/${runId}`)).status).toBe(200);
  }, 300_000);
});
