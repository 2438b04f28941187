/**
 * The static-form task page in a real Chromium (playwright-core), against a real gateway, Temporal
 * server and SQLite: an annotator opens their signed `local` link, fills the form and submits, and
 * the stored submission is what was typed; a refused worker sees "no work available" with the
 * reason; an altered link is refused; a page whose gateway goes away shows "reconnecting" and
 * resumes its unit when a gateway is back on the same address.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Agent, Worker } from '../model/entities.ts';
import { localWorkerLink } from '../providers/local.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

const FIELDS = [
  { name: 'label', label: 'Sentiment', type: 'select', options: ['positive', 'negative'] },
  { name: 'comment', type: 'textarea' },
  { name: 'confidence', type: 'number' },
  { name: 'sure', label: 'I am sure', type: 'checkbox' },
  { name: 'note', type: 'text', required: false },
];

function localFormConfig(assignments: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return formConfig(
    {
      provider: { type: 'local', workers: ['alice', 'bob', 'carol'] },
      blueprint: { type: 'static-form', fields: FIELDS, instructions: 'Read the sentence, then answer.' },
      ...overrides,
    },
    assignments,
  );
}

describe('static-form task page in Chromium', () => {
  let stack: Stack;
  let gateway: Gateway;
  let browser: Browser;

  async function launchRunning(config: Record<string, unknown>): Promise<string> {
    const { runId } = await stack.operator.launch(config);
    await eventually(async () => {
      const s = await stack.operator.status(runId);
      return s.status === 'running' && s.units.created === 0 ? true : undefined;
    }, `run ${runId} to be running`);
    return runId;
  }

  const link = (runId: string, worker: string): string => localWorkerLink(gateway.url, stack.settings.secret, runId, worker);

  async function openPage(url: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`script error on the task page: ${err.message}`);
    });
    await page.goto(url);
    return page;
  }

  const state = (page: Page, value: string): Promise<unknown> => page.waitForSelector(`body[data-state="${value}"]`, { timeout: 60_000 });

  beforeAll(async () => {
    stack = await startStack('sqlite');
    gateway = await startTestGateway(stack);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await stack?.stop();
  });

  it('an annotator opens their link, fills the form and submits; the stored data is what they typed', async () => {
    const runId = await launchRunning(localFormConfig(2));
    const page = await openPage(link(runId, 'alice'));
    await state(page, 'working');
    expect(await page.textContent('#hl-instructions')).toContain('Read the sentence');
    expect(await page.textContent('#hl-data')).toContain('sentence 0');

    await page.selectOption('#hl-field-label', 'negative');
    await page.fill('#hl-field-comment', 'The tone is gloomy.\nSecond line.');
    await page.fill('#hl-field-confidence', '4');
    await page.check('#hl-field-sure');
    await page.click('#hl-submit');
    await state(page, 'submitted');
    expect(await page.textContent('#hl-status')).toBe('Submitted');

    const worker = await stack.db.em().findOneOrFail(Worker, { provider: 'local', providerWorkerId: 'alice' });
    const agent = await eventually(
      async () => (await stack.db.em().findOne(Agent, { worker: worker.id, taskRun: runId, status: 'completed' })) ?? undefined,
      "alice's submission to be stored",
    );
    expect(agent.submission).toEqual({ label: 'negative', comment: 'The tone is gloomy.\nSecond line.', confidence: 4, sure: true });
    await page.close();
  });

  it('a worker for whom there is no unit sees "no work available" with the reason', async () => {
    const runId = await launchRunning(localFormConfig(1));
    const alice = await openPage(link(runId, 'alice'));
    await state(alice, 'working');
    const bob = await openPage(link(runId, 'bob'));
    await state(bob, 'no_work');
    expect(await bob.getAttribute('body', 'data-reason')).toBe('no_units_available');
    expect(await bob.textContent('#hl-status')).toBe('No work available');
    expect(await bob.textContent('#hl-message')).toContain('There is no work available for you right now.');
    expect(await bob.isVisible('#hl-form')).toBe(false);
    await alice.close();
    await bob.close();
  });

  it('waits for a partner before the task starts when agents work in pairs', async () => {
    const runId = await launchRunning(localFormConfig(1, { units_per_assignment: 2 }));
    const alice = await openPage(link(runId, 'alice'));
    await state(alice, 'waiting');
    expect(await alice.textContent('#hl-status')).toBe('Waiting for the task to start…');
    expect(await alice.isVisible('#hl-form')).toBe(false);
    const bob = await openPage(link(runId, 'bob'));
    await state(bob, 'working');
    await state(alice, 'working');
    await alice.close();
    await bob.close();
  });

  it('an altered link is refused with a clear message and registers nobody', async () => {
    const runId = await launchRunning(localFormConfig(1));
    const forged = link(runId, 'alice').replace('worker=alice', 'worker=mallory');
    const page = await openPage(forged);
    await state(page, 'error');
    expect(await page.textContent('#hl-message')).toContain('not valid for this task run');
    expect(await stack.db.em().count(Worker, { providerWorkerId: 'mallory' })).toBe(0);
    await page.close();
  });

  it('a custom HTML template shows the unit\'s data in its placeholders and submits its inputs as they are', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hitloop-template-'));
    const template = path.join(dir, 'form.html');
    writeFileSync(template, '<p id="shown">Sentence: {{text}}</p><p data-hitloop-field="text" id="field"></p><input name="answer" id="answer" required>');
    const runId = await launchRunning(localFormConfig(1, { blueprint: { type: 'static-form', template } }));
    const page = await openPage(link(runId, 'bob'));
    await state(page, 'working');
    expect(await page.textContent('#shown')).toBe('Sentence: sentence 0');
    expect(await page.textContent('#field')).toBe('sentence 0');
    await page.fill('#answer', 'free text answer');
    await page.click('#hl-submit');
    await state(page, 'submitted');
    const agents = await stack.db.em().find(Agent, { taskRun: runId });
    expect(agents.map((a) => a.submission)).toEqual([{ answer: 'free text answer' }]);
    await page.close();
  });

  it('onboarding first: a right answer opens the task, a wrong one shows "no work available" (not_qualified)', async () => {
    const runId = await launchRunning(
      localFormConfig(2, {
        onboarding_qualification: `browser-onboarded-${Date.now()}`,
        blueprint: {
          type: 'static-form',
          fields: FIELDS,
          onboarding: { fields: [{ name: 'capital', label: 'Capital of France', type: 'text' }], expected: { capital: 'Paris' } },
        },
      }),
    );
    const alice = await openPage(link(runId, 'alice'));
    await state(alice, 'onboarding');
    expect(await alice.isVisible('#hl-form')).toBe(false);
    await alice.fill('#hl-ob-field-capital', 'Paris');
    await alice.click('#hl-onboarding-submit');
    await state(alice, 'working');
    expect(await alice.textContent('#hl-data')).toContain('sentence 0');

    const bob = await openPage(link(runId, 'bob'));
    await state(bob, 'onboarding');
    await bob.fill('#hl-ob-field-capital', 'Lyon');
    await bob.click('#hl-onboarding-submit');
    await state(bob, 'no_work');
    expect(await bob.getAttribute('body', 'data-reason')).toBe('not_qualified');
    await alice.close();
    await bob.close();
  });

  it('shows "reconnecting" while its gateway is gone and resumes the same unit when one is back', async () => {
    const runId = await launchRunning(localFormConfig(1));
    const page = await openPage(link(runId, 'carol'));
    await state(page, 'working');
    await page.selectOption('#hl-field-label', 'positive');
    await page.fill('#hl-field-comment', 'kept across the outage');
    await page.fill('#hl-field-confidence', '2');

    const port = gateway.port;
    await gateway.close();
    await state(page, 'reconnecting');
    gateway = await startTestGateway(stack, { port });
    await state(page, 'working');
    // What was typed is still there, and it goes to the same agent.
    expect(await page.inputValue('#hl-field-comment')).toBe('kept across the outage');
    await page.click('#hl-submit');
    await state(page, 'submitted');
    const agents = await stack.db.em().find(Agent, { taskRun: runId });
    expect(agents).toHaveLength(1);
    expect(agents[0]!.submission).toEqual({ label: 'positive', comment: 'kept across the outage', confidence: 2, sure: false });
    await page.close();
  });
});
