/**
 * A whole run on the local MTurk, through the real gateway and a real Chromium page inside the
 * local MTurk's iframe: the preview is read-only and registers nobody, the worker accepts, works and
 * submits (to hitloop, then the page posts to MTurk's externalSubmit), and the operator reviews, pays
 * a bonus and exports. A forged worker id in the link is refused on the page.
 */
import { Writable } from 'node:stream';
import { type Browser, type Frame, type Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRunTo } from '../export/exportRun.ts';
import type { FakeMTurkServer } from '../fakes/mturk/server.ts';
import type { Gateway } from '../gateway/server.ts';
import { Agent, Worker } from '../model/entities.ts';
import { createReviewer } from '../review/operator.ts';
import { launchRunning, startTestGateway } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { MTURK_SANDBOX, startLocalMTurk } from './support/localMTurk.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';
import { agentSession } from '../providers/agentSessions.ts';

describe('a run on the local MTurk in Chromium', () => {
  let fake: FakeMTurkServer;
  let stack: Stack;
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    fake = await startLocalMTurk();
    stack = await startStack('sqlite');
    gateway = await startTestGateway(stack);
    // The HITs' ExternalURL is the task page as workers reach it: this gateway.
    stack.settings.gatewayUrl = gateway.url;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await stack?.stop();
    await fake?.close();
  });

  async function openPage(url: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`script error on a page: ${err.message}`);
    });
    await page.goto(url);
    return page;
  }

  /** The task page inside the local MTurk's iframe, once it has loaded. */
  async function taskFrame(page: Page): Promise<Frame> {
    const handle = await page.waitForSelector('#task', { timeout: 60_000 });
    return eventually(async () => {
      const frame = await handle.contentFrame();
      return frame && (await frame.$('body[data-state]')) ? frame : undefined;
    }, 'the task page inside the iframe');
  }

  /** The task page's link as MTurk opens it for a worker who accepted `hitId` (the page itself, without MTurk's frame). */
  function acceptedLink(runId: string, hitId: string, workerId: string): string {
    const accepted = fake.mturk.accept(hitId, workerId);
    const url = new URL(`${gateway.url}/task/${runId}`);
    for (const [key, value] of Object.entries({ hitloop_mturk: 'sandbox', assignmentId: accepted.AssignmentId, hitId, workerId, turkSubmitTo: fake.url })) {
      url.searchParams.set(key, value);
    }
    return url.toString();
  }

  const frameState = (frame: Frame, value: string): Promise<unknown> => frame.waitForSelector(`body[data-state="${value}"]`, { timeout: 60_000 });

  it('preview, accept, work, submit to hitloop and to externalSubmit, then review, bonus and export', async () => {
    const runId = await launchRunning(stack, formConfig({ provider: MTURK_SANDBOX }, 2));
    const hits = [...fake.mturk.hits.values()].filter((h) => h.Question.includes(`/task/${runId}`));
    expect(hits).toHaveLength(2);

    // Preview: the task read-only, nobody registered.
    const page = await openPage(`${fake.url}/mturk/preview?hitId=${hits[0]!.HITId}&workerId=A1BROWSERWORKER`);
    const preview = await taskFrame(page);
    await frameState(preview, 'preview');
    expect(await preview.textContent('#hl-message')).toContain('Accept the HIT');
    expect(await preview.isDisabled('#hl-submit')).toBe(true);
    expect(await stack.db.em().count(Worker, { provider: 'mturk' })).toBe(0);

    // Accept: the work page's iframe carries assignmentId, hitId, workerId and turkSubmitTo.
    await page.click('#accept');
    await page.waitForURL(/\/mturk\/work\?assignmentId=/);
    const work = await taskFrame(page);
    const params = new URL(work.url()).searchParams;
    expect(params.get('workerId')).toBe('A1BROWSERWORKER');
    expect(params.get('turkSubmitTo')).toBe(fake.url);
    const assignmentId = params.get('assignmentId')!;
    await frameState(work, 'working');
    await work.selectOption('#hl-field-label', 'negative');
    await work.click('#hl-submit');

    // hitloop stores it; then the page posts to MTurk, which shows its own "submitted" page in the frame.
    const worker = await eventually(async () => (await stack.db.em().findOne(Worker, { provider: 'mturk', providerWorkerId: 'A1BROWSERWORKER' })) ?? undefined, 'the worker');
    const agent = await eventually(
      async () => (await stack.db.em().findOne(Agent, { worker: worker.id, taskRun: runId, status: 'completed' })) ?? undefined,
      'the submission to be stored',
    );
    expect(agent.submission).toEqual({ label: 'negative' });
    // The gateway recorded the assignment the page was opened from as the agent's session: review pays through it.
    expect(await agentSession(stack.db.em(), 'mturk', agent.id)).toBe(assignmentId);
    const submittedFrame = await page.waitForSelector('#task', { timeout: 60_000 }).then((h) => h.contentFrame());
    await submittedFrame!.waitForSelector(`[data-submitted="${assignmentId}"]`, { timeout: 60_000 });
    expect(fake.mturk.assignments.get(assignmentId)).toMatchObject({ AssignmentStatus: 'Submitted', WorkerId: 'A1BROWSERWORKER' });
    expect(fake.mturk.assignments.get(assignmentId)!.Answer).toContain('<FreeText>negative</FreeText>');

    // Review, bonus, export.
    const reviewer = createReviewer({ client: stack.env.client, db: stack.db, settings: stack.settings });
    const unitId = agent.unit.id;
    await reviewer.review(runId, { decision: 'approve', unitIds: [unitId] });
    await reviewer.bonus(runId, { unitId, amount: 0.1, reason: 'quick and careful' });
    expect(fake.mturk.assignments.get(assignmentId)!.AssignmentStatus).toBe('Approved');
    expect(fake.mturk.ledger.filter((e) => e.assignmentId === assignmentId).map((e) => [e.kind, e.amount])).toEqual([
      ['reward', 0.5],
      ['bonus', 0.1],
    ]);
    let exported = '';
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        exported += chunk.toString();
        done();
      },
    });
    expect(await exportRunTo(stack.db, runId, out, { format: 'jsonl' })).toEqual({ rows: 1 });
    expect(exported).toContain('"negative"');
    expect(exported).toContain('A1BROWSERWORKER');
    await page.close();
  });

  it('asks a worker who accepted a slot no unit is free for to return the HIT', async () => {
    const runId = await launchRunning(stack, formConfig({ provider: MTURK_SANDBOX }, 1));
    const [hit] = [...fake.mturk.hits.values()].filter((h) => h.Question.includes(`/task/${runId}`));
    fake.mturk.call('CreateAdditionalAssignmentsForHIT', { HITId: hit!.HITId, NumberOfAdditionalAssignments: 1 });
    const holder = await openPage(acceptedLink(runId, hit!.HITId, 'A3HOLDINGWORKER'));
    await holder.waitForSelector('body[data-state="working"]', { timeout: 60_000 });
    const late = await openPage(acceptedLink(runId, hit!.HITId, 'A4LATEWORKER'));
    await late.waitForSelector('body[data-state="no_work"]', { timeout: 60_000 });
    expect(await late.textContent('body')).toContain('There is no work available for you right now. Please return the HIT on MTurk so your place goes to someone else.');
    await late.close();
    await holder.close();
  });

  it('takes a page opened again in a second tab to the unit the assignment holds; the first tab says the unit is open elsewhere', async () => {
    // The worker may hold two units at once: only the assignment's one unit keeps the second tab from another.
    const runId = await launchRunning(stack, formConfig({ provider: MTURK_SANDBOX, allowed_concurrent: 2 }, 2));
    const [hit] = [...fake.mturk.hits.values()].filter((h) => h.Question.includes(`/task/${runId}`));
    const link = acceptedLink(runId, hit!.HITId, 'A5TWOTABSWORKER');
    const first = await openPage(link);
    await first.waitForSelector('body[data-state="working"]', { timeout: 60_000 });
    const second = await openPage(link);
    await second.waitForSelector('body[data-state="working"]', { timeout: 60_000 });
    await first.waitForSelector('body[data-state="ended"]', { timeout: 60_000 });
    expect(await first.textContent('body')).toContain('This unit is open in another window or tab; carry on there.');

    await second.selectOption('#hl-field-label', 'positive');
    await second.click('#hl-submit');
    const worker = await eventually(async () => (await stack.db.em().findOne(Worker, { provider: 'mturk', providerWorkerId: 'A5TWOTABSWORKER' })) ?? undefined, 'the worker');
    const agents = await eventually(async () => {
      const found = await stack.db.em().find(Agent, { worker: worker.id, taskRun: runId });
      return found.some((a) => a.status === 'completed') ? found : undefined;
    }, 'the submission to be stored');
    expect(agents.map((a) => [a.status, a.submission])).toEqual([['completed', { label: 'positive' }]]);
    await first.close();
    await second.close();
  });

  it('refuses a page whose link names another worker than the assignment\'s', async () => {
    const runId = await launchRunning(stack, formConfig({ provider: MTURK_SANDBOX }, 1));
    const [hit] = [...fake.mturk.hits.values()].filter((h) => h.Question.includes(`/task/${runId}`));
    const accepted = fake.mturk.accept(hit!.HITId, 'A2REALWORKER');
    const forged = new URL(`${gateway.url}/task/${runId}`);
    for (const [key, value] of Object.entries({ hitloop_mturk: 'sandbox', assignmentId: accepted.AssignmentId, hitId: hit!.HITId, workerId: 'A9FORGEDWORKER', turkSubmitTo: fake.url })) {
      forged.searchParams.set(key, value);
    }
    const page = await openPage(forged.toString());
    await page.waitForSelector('body[data-state="error"], body[data-state="no_work"], body[data-state="ended"]', { timeout: 60_000 });
    // The person reads a sentence, not the gateway's reason (bad_worker_identity: the assignment is another worker's).
    expect(await page.getAttribute('body', 'data-state')).toBe('error');
    expect(await page.textContent('body')).toContain('This link is not valid for this task run');
    expect(await stack.db.em().count(Worker, { provider: 'mturk', providerWorkerId: 'A9FORGEDWORKER' })).toBe(0);
    await page.close();
  });
});
