/**
 * Bulk review of a run with a few thousand submitted units through the JSON API, the way the
 * console's "Approve all awaiting" does it (console/console.js `bulk`): pages of 200 units, each
 * page one request with its own request key. Real gateway, Temporal server and PostgreSQL; the
 * submitted units are written straight into the database (thousands of simulated workers would
 * test the gateway, not review).
 *
 * Paging lists every unit once; the bulk approval completes; every unit is approved exactly once
 * (one review, one provider call); a retried page request acts on none of its units again; the
 * API keeps answering other requests while a page is being approved.
 *
 * Opt-in (HITLOOP_BULK_REVIEW=1): not yet seen passing. On the shared 2-core machine its setup timed
 * out waiting 10 minutes for the run to launch its 2000 units; seeding the units straight into the
 * database too (not through the run's launches) would make it fit the suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Agent, ProviderCall, Review, Unit, Worker } from '../model/entities.ts';
import { formConfig } from './support/configs.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'bulk-review-password';
const UNITS = 2000;
const WORKERS = 40;
const PAGE = 200;

describe.skipIf(process.env.HITLOOP_BULK_REVIEW !== '1')('bulk review of thousands of units', () => {
  let stack: Stack;
  let gateway: Gateway;
  let runId: string;

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${PASSWORD}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(600_000),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  beforeAll(async () => {
    stack = await startStack('postgresql');
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    const data = Array.from({ length: UNITS }, (_, i) => ({ text: `sentence ${i}` }));
    runId = (await stack.operator.launch(formConfig({ data }, UNITS))).runId;
    await eventually(
      async () => ((await stack.db.em().count(Unit, { taskRun: runId, status: 'launched' })) === UNITS ? true : undefined),
      `all ${UNITS} units to be launched`,
      600_000,
    );
    // Each unit submitted by one of the workers, as recordSubmission leaves it: unit and agent completed.
    const em = stack.db.em().fork();
    const now = new Date();
    const workers = Array.from({ length: WORKERS }, (_, i) => ({ id: `w-bulk-${i}`, provider: 'mock', providerWorkerId: `bulk-${i}`, blocked: false, createdAt: now }));
    await em.insertMany(Worker, workers);
    const units = await em.find(Unit, { taskRun: runId }, { fields: ['id', 'assignment'], orderBy: { id: 'asc' } });
    const agents = units.map((unit, i) => ({
      id: `ag-bulk-${i}`,
      unit: unit.id,
      assignment: unit.assignment.id,
      taskRun: runId,
      worker: workers[i % WORKERS]!.id,
      status: 'completed' as const,
      registrationKey: `bulk-${i}`,
      initData: null,
      state: null,
      submission: { label: i % 2 ? 'positive' : 'negative' },
      submitKey: `s-${i}`,
      createdAt: now,
      startedAt: now,
      submittedAt: now,
      liveBytes: 0,
    }));
    for (let i = 0; i < agents.length; i += 500) await em.insertMany(Agent, agents.slice(i, i + 500));
    for (let i = 0; i < units.length; i++) {
      await em.nativeUpdate(Unit, { id: units[i]!.id }, { status: 'completed', worker: workers[i % WORKERS]!.id, assignedAt: now, endedAt: now });
    }
  }, 900_000);
  afterAll(async () => {
    await gateway?.close();
    await stack?.stop();
  });

  it('pages through every awaiting unit exactly once', async () => {
    const seen: string[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await api('GET', `/api/v1/runs/${runId}/units?status=awaiting&limit=${PAGE}&offset=${offset}`);
      expect(page.status).toBe(200);
      const units = page.body.units as Array<{ unitId: string }>;
      seen.push(...units.map((u) => u.unitId));
      if (!page.body.more) break;
    }
    expect(seen).toHaveLength(UNITS);
    expect(new Set(seen).size).toBe(UNITS);
  }, 300_000);

  it('approves all in pages with request keys: every unit once, a retried page acts on none again', async () => {
    const bulkKey = `bulk-approve-${Date.now()}`;
    let pageNumber = 0;
    let approved = 0;
    let firstPage: { unitIds: string[]; requestKey: string } | null = null;
    for (;;) {
      const page = await api('GET', `/api/v1/runs/${runId}/units?status=awaiting&offset=0&limit=${PAGE}`);
      const unitIds = (page.body.units as Array<{ unitId: string }>).map((u) => u.unitId);
      if (unitIds.length === 0) break;
      pageNumber++;
      const request = { decision: 'approve', unitIds, requestKey: `${bulkKey}-p${pageNumber}` };
      firstPage ??= { unitIds, requestKey: request.requestKey };
      // While a page is being approved, the API answers other requests.
      const [answer, meanwhile] = await Promise.all([api('POST', `/api/v1/runs/${runId}/reviews`, request), api('GET', `/api/v1/runs/${runId}`)]);
      expect(meanwhile.status).toBe(200);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      const results = answer.body.results as Array<{ unitId: string; repeated: boolean; decision: string }>;
      expect(results.map((r) => r.unitId).sort()).toEqual([...unitIds].sort());
      expect(results.every((r) => !r.repeated && r.decision === 'approve')).toBe(true);
      approved += results.length;
      if (!page.body.more) break;
    }
    expect(approved).toBe(UNITS);
    expect(pageNumber).toBe(UNITS / PAGE);

    // The first page's request again (a retry after a lost answer): every unit reported as done before.
    const retry = await api('POST', `/api/v1/runs/${runId}/reviews`, { decision: 'approve', ...firstPage! });
    expect(retry.status).toBe(200);
    expect((retry.body.results as Array<{ repeated: boolean }>).every((r) => r.repeated)).toBe(true);

    const em = stack.db.em().fork();
    expect(await em.count(Unit, { taskRun: runId, status: 'accepted' })).toBe(UNITS);
    expect(await em.count(Agent, { taskRun: runId, status: 'approved' })).toBe(UNITS);
    expect(await em.count(Review, { unit: { taskRun: runId } })).toBe(UNITS);
    const calls = await em.find(ProviderCall, { operation: 'approveWork', target: { $like: `${runId}-%` } }, { fields: ['target'] });
    expect(calls).toHaveLength(UNITS);
    expect(new Set(calls.map((c) => c.target)).size).toBe(UNITS);
    const awaiting = await api('GET', `/api/v1/runs/${runId}/units?status=awaiting`);
    expect(awaiting.body.units).toEqual([]);
  }, 1_800_000);
});
