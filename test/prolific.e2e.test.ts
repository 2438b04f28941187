/**
 * The `prolific` provider against the local Prolific (fakes/prolific/server.ts), through the real
 * gateway, task page (Chromium), Temporal server and SQLite: launch -> participants -> submissions
 * -> approve / reject / soft-reject -> bonuses -> export, with the fake's ledger showing every
 * payment once; then each bad input and fault of issue 9: a clear error, nothing stored changed, no
 * money moved twice.
 */
import { Writable } from 'node:stream';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRunTo } from '../export/exportRun.ts';
import { type FakeProlific, signWebhook, startFakeProlific } from '../fakes/prolific/server.ts';
import type { Gateway } from '../gateway/server.ts';
import { Agent, Bonus, ProviderCall, Unit, Worker } from '../model/entities.ts';
import type { AgentStatus } from '../model/status.ts';
import { ProlificClient } from '../providers/prolific/client.ts';
import { prolificProvider, studyInternalName } from '../providers/prolific/provider.ts';
import { prolificSettings } from '../providers/prolific/settings.ts';
import { ALLOWLIST_FILTER, BLOCKLIST_FILTER } from '../providers/prolific/groups.ts';
import { createQualificationService } from '../qualifications/service.ts';
import { bonusStates } from '../review/bonusStatus.ts';
import { createReviewer, type Reviewer } from '../review/operator.ts';
import { connect, launchRunning as launchRunningOn, startTestGateway } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { eventually, startStack, testLog, type Stack } from './support/stack.ts';

const WEBHOOK_SECRET = 'test-prolific-webhook-secret';

function prolificConfig(assignments: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return formConfig(
    { provider: { type: 'prolific', workspace_id: 'ws-fake', estimated_completion_minutes: 3 }, task_reward: 0.5, ...overrides },
    assignments,
  );
}

describe('prolific provider against the local Prolific', () => {
  let fake: FakeProlific;
  let stack: Stack;
  let gateway: Gateway;
  let browser: Browser;
  let reviewer: Reviewer;

  beforeAll(async () => {
    fake = await startFakeProlific({ webhookSecret: WEBHOOK_SECRET, processingMs: 50, balance: 10_000 });
    stack = await startStack('sqlite');
    Object.assign(stack.settings, { prolificUrl: fake.url, prolificToken: fake.token, prolificWebhookSecret: WEBHOOK_SECRET });
    gateway = await startTestGateway(stack);
    // The worker builds the study URL from the settings it shares with the stack.
    stack.settings.gatewayUrl = gateway.url;
    reviewer = createReviewer({ client: stack.env.client, db: stack.db, settings: stack.settings });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await stack?.stop();
    await fake?.close();
  });

  const em = () => stack.db.em();
  const studyOfRun = (runId: string) => [...fake.studies.values()].find((s) => s.internal_name === studyInternalName(runId));
  const submissionOf = (studyId: string, pid: string) =>
    [...fake.submissions.values()].find((s) => s.study_id === studyId && s.participant_id === pid);

  const launchRunning = (config: Record<string, unknown>): Promise<string> => launchRunningOn(stack, config);

  async function unitOf(runId: string, pid: string, status: AgentStatus = 'completed'): Promise<string> {
    const worker = await em().findOneOrFail(Worker, { provider: 'prolific', providerWorkerId: pid });
    const agent = await eventually(
      async () => (await em().findOne(Agent, { worker: worker.id, taskRun: runId, status })) ?? undefined,
      `${pid}'s agent to be ${status}`,
    );
    return agent.unit.id;
  }

  async function participantPage(studyId: string, pid: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`script error on the task page: ${err.message}`);
    });
    await page.goto(`${fake.url}/fake/start?study=${studyId}&participant=${pid}`);
    return page;
  }
  const state = (page: Page, value: string): Promise<unknown> => page.waitForSelector(`body[data-state="${value}"]`, { timeout: 90_000 });

  it('runs a whole study: launch, participants, submissions, reviews, bonuses, export; every payment once', { timeout: 300_000 }, async () => {
    const runId = await launchRunning(prolificConfig(4));
    const study = studyOfRun(runId)!;
    expect(study).toMatchObject({ status: 'ACTIVE', reward: 50, total_available_places: 4, maximum_allowed_time: expect.any(Number) });
    expect(study.external_study_url).toContain('PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}');
    // The webhook is subscribed to the gateway's route.
    expect(fake.hooks.map((h) => h.target_url)).toContain(`${gateway.url}/providers/prolific/webhook`);

    // Three participants work through the task page and are sent back to Prolific's completion URL.
    const labels: Record<string, string> = { p1: 'positive', p2: 'negative', p3: 'positive' };
    for (const pid of Object.keys(labels)) {
      const page = await participantPage(study.id, pid);
      await state(page, 'working');
      await page.selectOption('#hl-field-label', labels[pid]!);
      await page.click('#hl-submit');
      await state(page, 'complete'); // the local Prolific's completion page
      expect(page.url()).toContain(`${fake.url}/submissions/complete?cc=`);
      await page.close();
      expect(submissionOf(study.id, pid)).toMatchObject({ status: 'AWAITING REVIEW', entered_code: study.completion_codes[0]!.code });
    }

    // A fourth returns the study at Prolific: the webhook gives the unit back within seconds.
    const leaver = await participantPage(study.id, 'p4');
    await state(leaver, 'working');
    const p4Unit = await unitOf(runId, 'p4', 'in_task');
    fake.leave(submissionOf(study.id, 'p4')!.id, 'RETURNED');
    await unitOf(runId, 'p4', 'returned');
    await eventually(
      async () => ((await em().findOneOrFail(Unit, p4Unit)).status === 'launched' ? true : undefined),
      "p4's unit to be free again",
    );
    await leaver.close();

    // Reviews: approve, reject (a short note is made into Prolific's 100+ character message), soft-reject.
    const [u1, u2, u3] = [await unitOf(runId, 'p1'), await unitOf(runId, 'p2'), await unitOf(runId, 'p3')];
    await reviewer.review(runId, { decision: 'approve', unitIds: [u1] });
    await reviewer.review(runId, { decision: 'reject', unitIds: [u2], note: 'the label ignores the sentence' });
    await reviewer.review(runId, { decision: 'soft_reject', unitIds: [u3] });
    await eventually(async () => (submissionOf(study.id, 'p1')!.status === 'APPROVED' ? true : undefined), 'p1 approved at Prolific');
    await eventually(async () => (submissionOf(study.id, 'p2')!.status === 'REJECTED' ? true : undefined), 'p2 rejected at Prolific');
    await eventually(
      async () => (submissionOf(study.id, 'p3')!.status === 'APPROVED' ? true : undefined),
      'p3 (soft-rejected) approved at Prolific',
    );
    expect(submissionOf(study.id, 'p2')!.message!.length).toBeGreaterThanOrEqual(100);
    expect(submissionOf(study.id, 'p2')!.message).toContain('the label ignores the sentence');
    expect((await em().findOneOrFail(Unit, u3)).status).toBe('soft_rejected');
    // A reject of a submission Prolific already approved is refused (review/store.ts asks before it records).
    await expect(
      prolificProvider.rejectWork({ em: em(), settings: stack.settings, log: testLog }, { workerId: 'p1', unitId: u1, requestKey: 'late-reject' }),
    ).rejects.toThrow(/already approved at Prolific.*soft-reject/);
    expect(submissionOf(study.id, 'p1')!.status).toBe('APPROVED');

    // Bonuses: set up, then paid, once per request (the same request again pays nothing).
    const first = await reviewer.bonus(runId, { unitId: u1, amount: 0.25, reason: 'careful work', requestKey: 'bonus-p1' });
    expect(first.providerRef).toBeTruthy();
    await reviewer.bonus(runId, { unitId: u1, amount: 0.25, reason: 'careful work', requestKey: 'bonus-p1' });
    await reviewer.bonus(runId, { unitId: u3, amount: 0.1, reason: 'tried', requestKey: 'bonus-p3' });

    // Export: the three submissions.
    const chunks: string[] = [];
    const out = new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    const { rows } = await exportRunTo(stack.db, runId, out, { format: 'jsonl' });
    expect(rows).toBe(3);
    expect(chunks.join('')).toContain('"negative"');

    // The ledger: rewards for the approved and soft-rejected, none for the rejected, each bonus once.
    const ledger = fake.ledger.filter((e) => e.study === study.id);
    expect(ledger.map((e) => `${e.kind}:${e.participant_id}:${e.amount}`).sort()).toEqual([
      'bonus:p1:25',
      'bonus:p3:10',
      'reward:p1:50',
      'reward:p3:50',
    ]);
    expect([...fake.paymentsByRef().values()].every((n) => n === 1)).toBe(true);

    // Spend includes Prolific's fee: 4 units launched at 0.5 (3 payable completed/reviewed + 1 launched) + bonuses 0.35.
    const status = await stack.operator.status(runId);
    expect(status.serviceFee).toBeGreaterThan(0);
    expect(status.spend).toBeCloseTo((status.spend - status.serviceFee!) * (4 / 3), 3);
    await stack.operator.shutdown(runId);
  });

  /** A participant takes a place at Prolific and registers over the protocol; resolves once their agent is in_task. */
  async function joinOverProtocol(runId: string, studyId: string, pid: string): Promise<{ submissionId: string; unitId: string }> {
    const { submission } = fake.startParticipant(studyId, pid);
    const conn = await connect(gateway);
    conn.register(runId, { PROLIFIC_PID: pid, STUDY_ID: studyId, SESSION_ID: submission.id }, `k-${pid}`);
    expect(await conn.expect((p) => p.type === 'error' || p.type === 'agent', 60_000, 'register answer')).toMatchObject({ type: 'agent' });
    const unitId = await unitOf(runId, pid, 'in_task');
    conn.close();
    return { submissionId: submission.id, unitId };
  }

  const unitLaunchedAgain = (unitId: string, who: string) =>
    eventually(async () => ((await em().findOneOrFail(Unit, unitId)).status === 'launched' ? true : undefined), `${who}'s unit to be free again`);

  it('without webhooks, the run polls the study: a returned participant ends `returned`, a timed-out one `timeout`, their units free', { timeout: 300_000 }, async () => {
    fake.webhooksEnabled = false;
    try {
      const provider = { type: 'prolific', workspace_id: 'ws-fake', status_poll_seconds: 2 };
      const runId = await launchRunning(prolificConfig(2, { provider }));
      const study = studyOfRun(runId)!;
      const returner = await joinOverProtocol(runId, study.id, 'poll-returner');
      const sleeper = await joinOverProtocol(runId, study.id, 'poll-sleeper');
      const polls = () => fake.requests.filter((r) => r === `GET /api/v1/studies/${study.id}/submissions/`).length;
      const pollsBefore = polls();
      fake.leave(returner.submissionId, 'RETURNED');
      fake.leave(sleeper.submissionId, 'TIMED-OUT');
      // Each reported with its own status, found by the poll alone (no webhook was sent).
      await unitOf(runId, 'poll-returner', 'returned');
      await unitOf(runId, 'poll-sleeper', 'timeout');
      await unitLaunchedAgain(returner.unitId, 'the returner');
      await unitLaunchedAgain(sleeper.unitId, 'the sleeper');
      expect(polls()).toBeGreaterThan(pollsBefore);
      expect(await em().count(ProviderCall, { provider: 'prolific', operation: 'webhook', target: { $in: [returner.submissionId, sleeper.submissionId] } })).toBe(0);
      await stack.operator.shutdown(runId);
    } finally {
      fake.webhooksEnabled = true;
    }
  });

  it('a TIMED-OUT webhook ends the agent `timeout` (RETURNED ends it `returned`), without waiting for a poll', { timeout: 300_000 }, async () => {
    // Polls an hour apart: only the webhook can free the unit within this test.
    const runId = await launchRunning(prolificConfig(1, { provider: { type: 'prolific', workspace_id: 'ws-fake', status_poll_seconds: 3600 } }));
    const study = studyOfRun(runId)!;
    const late = await joinOverProtocol(runId, study.id, 'hook-sleeper');
    fake.leave(late.submissionId, 'TIMED-OUT');
    await unitOf(runId, 'hook-sleeper', 'timeout');
    await unitLaunchedAgain(late.unitId, 'the timed-out participant');
    expect(await em().count(ProviderCall, { provider: 'prolific', operation: 'webhook', target: late.submissionId })).toBe(1);
    await stack.operator.shutdown(runId);
  });

  it("qualifications and blocks: the study's filters name the run's allow and block lists, which grants and blocks keep up to date", { timeout: 300_000 }, async () => {
    const quals = createQualificationService({ db: stack.db, settings: stack.settings, log: testLog });
    await quals.create({ name: 'prolific-trained' });
    await quals.grant({ provider: 'prolific', providerWorkerId: 'grp-trained', name: 'prolific-trained', value: 1 });
    await quals.grant({ provider: 'prolific', providerWorkerId: 'grp-mallory', name: 'prolific-trained', value: 1 });
    await quals.block({ provider: 'prolific', providerWorkerId: 'grp-mallory' });
    const runId = await launchRunning(prolificConfig(3, { qualifications: [{ name: 'prolific-trained', comparator: 'Exists' }] }));
    const study = studyOfRun(runId)!;
    const [allowFilter, blockFilter] = study.filters;
    expect(study.filters).toEqual([
      { filter_id: ALLOWLIST_FILTER, selected_values: [expect.any(String)] },
      { filter_id: BLOCKLIST_FILTER, selected_values: [expect.any(String)] },
    ]);
    const members = (filter: typeof allowFilter) => [...fake.groups.get(filter!.selected_values![0]!)!.participants.keys()].sort();
    // Made with the workers who belong in them at launch: the qualified one allowed, the blocked one blocked.
    expect(members(allowFilter)).toEqual(['grp-mallory', 'grp-trained']);
    expect(members(blockFilter)).toEqual(['grp-mallory']);
    expect(() => fake.startParticipant(study.id, 'grp-newcomer')).toThrow(/not eligible/i);
    expect(() => fake.startParticipant(study.id, 'grp-mallory')).toThrow(/not eligible/i);

    // During the run: a grant lets the newcomer in, a revoke takes them out again; a block and an unblock likewise.
    await quals.grant({ provider: 'prolific', providerWorkerId: 'grp-newcomer', name: 'prolific-trained', value: 2 });
    expect(members(allowFilter)).toContain('grp-newcomer');
    await quals.revoke({ provider: 'prolific', providerWorkerId: 'grp-newcomer', name: 'prolific-trained' });
    expect(members(allowFilter)).not.toContain('grp-newcomer');
    await quals.block({ provider: 'prolific', providerWorkerId: 'grp-trained' });
    expect(members(blockFilter)).toEqual(['grp-mallory', 'grp-trained']);
    expect(() => fake.startParticipant(study.id, 'grp-trained')).toThrow(/not eligible/i);
    await quals.unblock({ provider: 'prolific', providerWorkerId: 'grp-trained' });
    await quals.unblock({ provider: 'prolific', providerWorkerId: 'grp-mallory' });
    expect(members(blockFilter)).toEqual([]);
    expect(fake.startParticipant(study.id, 'grp-trained').submission.status).toBe('ACTIVE');

    // The filters themselves are frozen once the study is published: the groups are what changes.
    const patch = await fetch(`${fake.apiUrl}/studies/${study.id}/`, {
      method: 'PATCH',
      headers: { authorization: `Token ${fake.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ filters: [] }),
    });
    expect(patch.status).toBe(400);
    expect(await patch.text()).toContain('cannot be changed');

    // A run without qualifications has a block list only; an ended run's groups are left alone.
    await stack.operator.shutdown(runId);
    await eventually(async () => ((await stack.operator.status(runId)).status === 'cancelled' ? true : undefined), 'the run to end');
    await quals.block({ provider: 'prolific', providerWorkerId: 'grp-newcomer' });
    expect(members(blockFilter)).toEqual([]);
    const plain = await launchRunning(prolificConfig(1));
    expect(studyOfRun(plain)!.filters.map((f) => f.filter_id)).toEqual([BLOCKLIST_FILTER]);
    expect([...fake.groups.get(studyOfRun(plain)!.filters[0]!.selected_values![0]!)!.participants.keys()]).toEqual(['grp-newcomer']);
    await quals.unblock({ provider: 'prolific', providerWorkerId: 'grp-newcomer' });
    await stack.operator.shutdown(plain);
  });

  it('refuses a forged or foreign session with bad_worker_identity, and a link whose return address was altered', async () => {
    const runId = await launchRunning(prolificConfig(2));
    const other = await launchRunning(prolificConfig(1));
    const study = studyOfRun(runId)!;
    const { submission } = fake.startParticipant(study.id, 'honest');
    const foreignStudy = studyOfRun(other)!;
    const { submission: foreign } = fake.startParticipant(foreignStudy.id, 'elsewhere');
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ PROLIFIC_PID: 'mallory', STUDY_ID: study.id, SESSION_ID: submission.id }, /another participant/],
      [{ PROLIFIC_PID: 'elsewhere', STUDY_ID: foreignStudy.id, SESSION_ID: foreign.id }, /not the one of this task/],
      [{ PROLIFIC_PID: 'elsewhere', STUDY_ID: study.id, SESSION_ID: foreign.id }, /another participant or study/],
      [{ PROLIFIC_PID: 'honest', STUDY_ID: study.id, SESSION_ID: 'nosuchsession' }, /does not know this study or session/],
      [{ PROLIFIC_PID: 'honest', STUDY_ID: study.id }, /lacks PROLIFIC_PID, STUDY_ID or SESSION_ID/],
    ];
    const workersBefore = await em().count(Worker, {});
    for (const [params, message] of cases) {
      const conn = await connect(gateway);
      conn.register(runId, params, `k-${Math.random()}`);
      const reply = await conn.expect((p) => p.type === 'error' || p.type === 'agent', 60_000, 'register answer');
      expect(reply).toMatchObject({ type: 'error', code: 'bad_worker_identity', message: expect.stringMatching(message) });
      conn.close();
    }
    expect(await em().count(Worker, {})).toBe(workersBefore);
    // The honest one is let in.
    const conn = await connect(gateway);
    conn.register(runId, { PROLIFIC_PID: 'honest', STUDY_ID: study.id, SESSION_ID: submission.id }, 'k-honest');
    expect(await conn.expect((p) => p.type === 'error' || p.type === 'agent', 60_000, 'register answer')).toMatchObject({ type: 'agent' });
    conn.close();

    const link = new URL(study.external_study_url.replaceAll('{{%', '').replaceAll('%}}', ''));
    link.searchParams.set('hitloop_done', 'https://evil.example/phish');
    const res = await fetch(link);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('the return address in this link was altered');
    await stack.operator.shutdown(runId);
    await stack.operator.shutdown(other);
  });

  it('webhooks: a bad signature or a replay is refused and changes nothing; a repeated event is handled once', async () => {
    const url = `${gateway.url}/providers/prolific/webhook`;
    const body = JSON.stringify({
      event_type: 'submission.status.change',
      resource_id: 'sub-x',
      status: 'RETURNED',
      participant_id: 'nobody',
      study_id: 'nostudy',
    });
    const post = (headers: Record<string, string>, payload = body) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
    const webhookRows = () => em().count(ProviderCall, { provider: 'prolific', operation: 'webhook' });
    const before = await webhookRows();
    const now = String(Math.floor(Date.now() / 1000));

    const forged = await post({
      'x-prolific-request-signature': signWebhook('wrong-secret', now, body),
      'x-prolific-request-timestamp': now,
    });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ error: expect.stringContaining('signature does not match') });
    const tampered = await post(
      { 'x-prolific-request-signature': signWebhook(WEBHOOK_SECRET, now, body), 'x-prolific-request-timestamp': now },
      body.replace('RETURNED', 'APPROVED'),
    );
    expect(tampered.status).toBe(401);
    const old = String(Math.floor(Date.now() / 1000) - 3600);
    const replay = await post({
      'x-prolific-request-signature': signWebhook(WEBHOOK_SECRET, old, body),
      'x-prolific-request-timestamp': old,
    });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: expect.stringContaining('replay') });
    expect((await post({})).status).toBe(401);
    expect(await webhookRows()).toBe(before);

    const signed = { 'x-prolific-request-signature': signWebhook(WEBHOOK_SECRET, now, body), 'x-prolific-request-timestamp': now };
    expect(await (await post(signed)).json()).toEqual({ freed: 0 });
    expect(await (await post(signed)).json()).toEqual({ duplicate: true });
    expect(await webhookRows()).toBe(before + 1);
  });

  it('a wrong token or a balance short of the worst case fails the launch with a clear message and no study', async () => {
    const studiesBefore = fake.studies.size;
    stack.settings.prolificToken = 'expired-token';
    try {
      const { runId } = await stack.operator.launch(prolificConfig(2));
      const failed = await eventually(async () => {
        const s = await stack.operator.status(runId);
        return s.status === 'failed' ? s : undefined;
      }, 'the run to fail');
      expect(failed.failureReason).toMatch(/Prolific refused the API token/);
      expect(failed.failureReason).not.toContain('expired-token');
    } finally {
      stack.settings.prolificToken = fake.token;
    }
    // 2 units x 0.5 fit; 400 units x 0.5 = 200 + fee do not fit 100.
    const { runId } = await stack.operator.launch(prolificConfig(400));
    const failed = await eventually(
      async () => {
        const s = await stack.operator.status(runId);
        return s.status === 'failed' ? s : undefined;
      },
      'the run to fail',
      120_000,
    );
    expect(failed.failureReason).toMatch(/workspace ws-fake has .* but this run may cost .*top up/);
    expect(fake.studies.size).toBe(studiesBefore);
  });

  it('a failure between creating and publishing the study is retried without a second study', async () => {
    fake.fail('POST', /^\/api\/v1\/studies\/[^/]+\/transition\/$/, 503, 1);
    const runId = await launchRunning(prolificConfig(1));
    expect([...fake.studies.values()].filter((s) => s.internal_name === studyInternalName(runId))).toHaveLength(1);
    expect(studyOfRun(runId)!.status).toBe('ACTIVE');
    expect(fake.requests.filter((r) => r.includes('(fault 503)'))).toHaveLength(1);
    await stack.operator.shutdown(runId);
  });

  it('a 5xx that keeps coming is retried with backoff and shown in status; once Prolific answers, the run carries on', { timeout: 300_000 }, async () => {
    // Raising the study's places for a second unit (the study is created with one) fails until the fault is lifted.
    fake.fail('PATCH', /^\/api\/v1\/studies\/[^/]+\/$/, 503, 100_000);
    try {
      // Not launchRunning: its units cannot all launch while the fault lasts.
      const { runId } = await stack.operator.launch(prolificConfig(2));
      const stuck = await eventually(
        async () => (await stack.operator.status(runId)).stuck ?? undefined,
        'the status to say which step keeps failing',
        120_000,
      );
      expect(stuck).toMatch(/^stuck: launchUnits failing, \d+ attempts: Prolific refused PATCH \/studies\/\S+ \(HTTP 503\)/);
      expect(stuck).not.toContain(fake.token);
      fake.clearFaults();
      await eventually(async () => ((await stack.operator.status(runId)).units.launched === 2 ? true : undefined), 'the units to launch', 120_000);
      expect(studyOfRun(runId)!.total_available_places).toBe(2);
      expect((await stack.operator.status(runId)).stuck).toBeNull();
      await stack.operator.shutdown(runId);
    } finally {
      fake.clearFaults();
    }
  });

  it('the client retries 5xx and timeouts on safe calls, and checks a rejection before sending it', async () => {
    const client = new ProlificClient(prolificSettings(stack.settings), { backoffMs: 5, timeoutMs: 500 });
    const study = [...fake.studies.values()][0]!;
    fake.fail('GET', new RegExp(`/studies/${study.id}/$`), 502, 2);
    expect((await client.getStudy(study.id)).id).toBe(study.id);
    fake.fail('GET', new RegExp(`/studies/${study.id}/$`), 0, 1, true);
    expect((await client.getStudy(study.id)).id).toBe(study.id);
    fake.fail('GET', new RegExp(`/studies/${study.id}/$`), 500, 10);
    await expect(client.getStudy(study.id)).rejects.toThrow(/Prolific refused GET .* \(HTTP 500\)/);
    const requests = fake.requests.length;
    await expect(client.rejectSubmission('any', { message: 'too short', rejection_category: 'LOW_EFFORT' })).rejects.toThrow(
      /at least 100 characters/,
    );
    await expect(client.rejectSubmission('any', { message: 'x'.repeat(120), rejection_category: 'BAD' })).rejects.toThrow(/must be one of/);
    expect(fake.requests.length).toBe(requests);
    // A bad request is answered with Prolific's error body, shown field by field.
    await expect(client.createStudy({ name: '' } as never)).rejects.toThrow(/HTTP 400.*name/);
  });

  it('a bonus above max_spend is refused before anything is recorded or paid', async () => {
    const runId = await launchRunning(prolificConfig(1, { max_spend: 1 }));
    const study = studyOfRun(runId)!;
    const page = await participantPage(study.id, 'budget');
    await state(page, 'working');
    await page.selectOption('#hl-field-label', 'positive');
    await page.click('#hl-submit');
    await state(page, 'complete');
    await page.close();
    const unitId = await unitOf(runId, 'budget');
    const paid = fake.ledger.length;
    // Spend so far: 0.5 + a third = 0.6667; a 0.3 bonus with its fee (0.4) would make 1.0667 > 1.
    await expect(reviewer.bonus(runId, { unitId, amount: 0.3, reason: 'too much' })).rejects.toThrow(
      /a bonus of 0.3 \(0.4 with the provider's fee\) is more than run .*max_spend leaves \(0.3333 of 1\); nothing was paid/,
    );
    expect(await em().count(Bonus, { unit: unitId })).toBe(0);
    expect(fake.ledger.length).toBe(paid);
    await stack.operator.shutdown(runId);
  });

  it('a crash between bonus set-up and pay never pays twice: read back, pay once, or park for the operator', async () => {
    const runId = await launchRunning(prolificConfig(3));
    const study = studyOfRun(runId)!;
    const units: string[] = [];
    for (const pid of ['c1', 'c2', 'c3']) {
      const page = await participantPage(study.id, pid);
      await state(page, 'working');
      await page.selectOption('#hl-field-label', 'positive');
      await page.click('#hl-submit');
      await state(page, 'complete');
      await page.close();
      units.push(await unitOf(runId, pid));
    }
    const ctx = { em: em(), settings: stack.settings, log: testLog };
    const client = new ProlificClient(prolificSettings(stack.settings));
    const record = (operation: string, requestKey: string, payload: Record<string, unknown>) =>
      em().insert(ProviderCall, { provider: 'prolific', operation, requestKey, target: 'x', payload, createdAt: new Date() });
    const paymentsFor = (pid: string) => fake.ledger.filter((e) => e.kind === 'bonus' && e.participant_id === pid).length;

    // c1: the pay call went through, then the worker died before recording it: read back, not paid again.
    const b1 = await client.setUpBonus(study.id, 'c1', 0.2);
    await record('bonusSetUp', 'crash-1', { bulkId: b1.id });
    await record('bonusPayAttempt', 'crash-1', { bulkId: b1.id });
    await client.payBonus(b1.id);
    expect(
      await prolificProvider.payBonus(ctx, { workerId: 'c1', unitId: units[0]!, amount: 0.2, reason: 'r', requestKey: 'crash-1' }),
    ).toEqual({ providerRef: b1.id });
    expect(paymentsFor('c1')).toBe(1);

    // c2: the worker died after recording the attempt, before calling pay: read back SET_UP, paid once.
    const b2 = await client.setUpBonus(study.id, 'c2', 0.2);
    await record('bonusSetUp', 'crash-2', { bulkId: b2.id });
    await record('bonusPayAttempt', 'crash-2', { bulkId: b2.id });
    await prolificProvider.payBonus(ctx, { workerId: 'c2', unitId: units[1]!, amount: 0.2, reason: 'r', requestKey: 'crash-2' });
    await prolificProvider.payBonus(ctx, { workerId: 'c2', unitId: units[1]!, amount: 0.2, reason: 'r', requestKey: 'crash-2' });
    expect(paymentsFor('c2')).toBe(1);

    // c3, through the review workflow: the pay call fails with a 503 (did it pay? a 503 cannot say),
    // and afterwards Prolific cannot be asked: parked for the operator, not paid.
    fake.fail('POST', /\/bulk-bonus-payments\/[^/]+\/pay\/$/, 503, 1);
    fake.fail('GET', /\/bulk-bonus-payments\/[^/]+\/$/, 503, 1000);
    await expect(reviewer.bonus(runId, { unitId: units[2]!, amount: 0.2, reason: 'r', requestKey: 'crash-3' })).rejects.toThrow(
      /parked, not paid again/,
    );
    expect(paymentsFor('c3')).toBe(0);
    expect(await em().count(ProviderCall, { provider: 'prolific', operation: 'bonusParked', requestKey: 'crash-3' })).toBe(1);
    expect(await bonusStates(stack.db, runId)).toEqual([
      expect.objectContaining({
        requestKey: 'crash-3',
        status: 'parked',
        amount: 0.2,
        parked: expect.objectContaining({ readBack: null }),
      }),
    ]);

    // The fake itself pays twice when asked twice: that is what the records above guard against.
    await client.payBonus(b2.id);
    expect(paymentsFor('c2')).toBe(2);
    await stack.operator.shutdown(runId);
  });
});
