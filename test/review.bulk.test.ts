/**
 * Bulk review of a run with thousands of submitted units through the JSON API, the way the console's
 * "Approve all" does it (console/console.js `bulk`): pages of 200 units, each page one request with
 * its own request key. Real gateway, Temporal dev server, hitloop worker (every review is its own
 * ReviewWorkflow, as in production) and PostgreSQL. The finished run is written straight into the
 * database (test/support/seedRun.ts): 2,000 workers' sessions would test the gateway, not review.
 *
 * Paging lists every unit once in pages of at most 200; the bulk approval completes; every unit is
 * approved exactly once (one review row, one provider call, spend unchanged: approving pays no
 * more than the units' pay); every page requested again with its key acts on none of its units
 * again; the API answers other requests while the bulk runs (their answer times are printed).
 *
 * The default suite reviews 400 units (two pages: paging, keys, retries and responsiveness all hold
 * the same way); HITLOOP_BULK_REVIEW=1 reviews 2,000, about 4 minutes on the shared 2-core machine,
 * nearly all of it the review workflows (a page of 200 took ~20 s; 32 workflows at once instead of 8
 * made it slower there, the dev server timing out on its own writes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Agent, ProviderCall, Review, Unit } from '../model/entities.ts';
import { runSpend } from '../review/spend.ts';
import { formConfig } from './support/configs.ts';
import { seedFinishedRun } from './support/seedRun.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'bulk-review-password';
const UNITS = process.env.HITLOOP_BULK_REVIEW === '1' ? 2000 : 400;
const WORKERS = 40;
const PAGE = 200;
const REWARD = 0.25;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  bytes: number;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

describe(`bulk review of ${UNITS} units`, () => {
  let stack: Stack;
  let gateway: Gateway;
  let runId: string;
  let spendBefore: number;

  async function api(method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${PASSWORD}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(600_000),
    });
    const text = await response.text();
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown>, bytes: Buffer.byteLength(text) };
  }

  const awaitingPage = (offset: number, by = 'item') => api('GET', `/api/v1/runs/${runId}/units?status=awaiting&by=${by}&limit=${PAGE}&offset=${offset}`);
  const unitIdsOf = (page: Answer) => (page.body.units as Array<{ unitId: string }>).map((u) => u.unitId);

  beforeAll(async () => {
    stack = await startStack('postgresql');
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    const data = Array.from({ length: UNITS }, (_, i) => ({ text: `sentence ${i}` }));
    const started = Date.now();
    runId = (await seedFinishedRun(stack.db, formConfig({ data, task_reward: REWARD }, UNITS), { units: UNITS, workers: WORKERS })).runId;
    console.log(`bulk review: seeded ${UNITS} submitted units in ${Date.now() - started} ms`);
    spendBefore = await runSpend(stack.db.em(), runId);
    expect(spendBefore).toBe(UNITS * REWARD);
  }, 300_000);
  afterAll(async () => {
    await gateway?.close();
    await stack?.stop();
  });

  it('pages through every awaiting unit exactly once, by item and by worker, in pages of at most 200', async () => {
    for (const by of ['item', 'worker']) {
      const seen: string[] = [];
      let largest = 0;
      for (let offset = 0; ; offset += PAGE) {
        const page = await awaitingPage(offset, by);
        expect(page.status, JSON.stringify(page.body)).toBe(200);
        const ids = unitIdsOf(page);
        expect(ids.length).toBeLessThanOrEqual(PAGE);
        // Each page carries the histories of its own workers only, not of every worker of the run.
        expect((page.body.workers as unknown[]).length).toBeLessThanOrEqual(WORKERS);
        largest = Math.max(largest, page.bytes);
        seen.push(...ids);
        if (!page.body.more) break;
      }
      console.log(`bulk review: ${seen.length} units listed by ${by}, largest page ${Math.round(largest / 1024)} KiB`);
      expect(seen).toHaveLength(UNITS);
      expect(new Set(seen).size).toBe(UNITS);
    }
  }, 300_000);

  it('approves all in pages with request keys: every unit once, the API answering meanwhile, a retried page acts on none again', async () => {
    const bulkKey = `bulk-approve-${Date.now()}`;
    const requests: Array<{ decision: 'approve'; unitIds: string[]; requestKey: string }> = [];
    const pageTimes: number[] = [];
    let bulkDone = false;

    // The console's loop: the first page of what still awaits review, approved, until none is left.
    const bulk = (async () => {
      try {
        for (;;) {
          const page = await awaitingPage(0);
          expect(page.status).toBe(200);
          const unitIds = unitIdsOf(page);
          if (unitIds.length === 0) break;
          const request = { decision: 'approve' as const, unitIds, requestKey: `${bulkKey}-p${requests.length + 1}` };
          requests.push(request);
          const started = Date.now();
          const answer = await api('POST', `/api/v1/runs/${runId}/reviews`, request);
          pageTimes.push(Date.now() - started);
          expect(answer.status, JSON.stringify(answer.body).slice(0, 2000)).toBe(200);
          const results = answer.body.results as Array<{ unitId: string; repeated: boolean; decision: string; unitStatus: string }>;
          expect(results.map((r) => r.unitId).sort()).toEqual([...unitIds].sort());
          expect(results.every((r) => !r.repeated && r.decision === 'approve' && r.unitStatus === 'accepted')).toBe(true);
          if (!page.body.more) break;
        }
      } finally {
        bulkDone = true;
      }
    })();

    // Meanwhile another operator looks at the run and its reviewed units: each answered while the bulk runs.
    const probes: Array<{ ms: number; duringBulk: boolean }> = [];
    const probing = (async () => {
      for (let i = 0; !bulkDone; i++) {
        const started = Date.now();
        const answer = await api('GET', i % 2 ? `/api/v1/runs/${runId}` : `/api/v1/runs/${runId}/units?status=reviewed&limit=50`);
        expect(answer.status).toBe(200);
        probes.push({ ms: Date.now() - started, duringBulk: !bulkDone });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const bulkStarted = Date.now();
    await bulk;
    const bulkMs = Date.now() - bulkStarted;
    await probing;

    const during = probes.filter((p) => p.duringBulk).map((p) => p.ms);
    console.log(
      `bulk review: ${UNITS} units approved in ${requests.length} requests in ${(bulkMs / 1000).toFixed(1)} s ` +
        `(a request: median ${median(pageTimes)} ms, longest ${Math.max(...pageTimes)} ms); ` +
        `${during.length} other requests answered meanwhile (median ${median(during)} ms, longest ${Math.max(...during)} ms)`,
    );
    expect(requests).toHaveLength(UNITS / PAGE);
    expect(during.length).toBeGreaterThan(0);

    // Every page again with its key (the answers were lost, say): every unit reported as done before.
    for (const request of requests) {
      const retry = await api('POST', `/api/v1/runs/${runId}/reviews`, request);
      expect(retry.status, JSON.stringify(retry.body).slice(0, 2000)).toBe(200);
      const results = retry.body.results as Array<{ unitId: string; repeated: boolean }>;
      expect(results).toHaveLength(request.unitIds.length);
      expect(results.every((r) => r.repeated)).toBe(true);
    }

    const em = stack.db.em().fork();
    expect(await em.count(Unit, { taskRun: runId, status: 'accepted' })).toBe(UNITS);
    expect(await em.count(Agent, { taskRun: runId, status: 'approved' })).toBe(UNITS);
    const reviews = await em.find(Review, { unit: { taskRun: runId } }, { fields: ['unit', 'decision'] });
    expect(reviews).toHaveLength(UNITS);
    expect(new Set(reviews.map((r) => r.unit.id)).size).toBe(UNITS);
    expect(reviews.every((r) => r.decision === 'approve')).toBe(true);
    // The provider's record: one approval per unit, none twice, none rejected.
    const calls = await em.find(ProviderCall, { operation: { $in: ['approveWork', 'rejectWork'] }, target: { $like: `${runId}-%` } }, { fields: ['target', 'operation'] });
    expect(calls).toHaveLength(UNITS);
    expect(calls.every((c) => c.operation === 'approveWork')).toBe(true);
    expect(new Set(calls.map((c) => c.target)).size).toBe(UNITS);
    // Accepted units cost what they cost when completed: approving paid nothing more.
    expect(await runSpend(em, runId)).toBe(spendBefore);
    const detail = await api('GET', `/api/v1/runs/${runId}`);
    expect(detail.body).toMatchObject({ spend: spendBefore, units: { accepted: UNITS, completed: 0 } });
    const awaiting = await awaitingPage(0);
    expect(awaiting.body.units).toEqual([]);
  }, 1_200_000);
});
