/**
 * The worker's task page as a new worker sees it, in a real Chromium against a real gateway,
 * Temporal server and SQLite: the run's title, description, pay and time left; an image and an
 * audio clip from the unit's data; radio buttons, checkboxes, a number with bounds, help text and a
 * hidden field filled from the data; a custom template whose attributes take `{{key}}` (escaped,
 * and never a `javascript:` URL); refusals in plain sentences; a phone-sized screen. Screenshots go
 * to test/screenshots/ (gitignored).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Agent, Worker } from '../model/entities.ts';
import { localWorkerLink } from '../providers/local.ts';
import { launchRunning, startTestGateway } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { IMAGE, toneWav } from './support/media.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const PAYLOAD = '"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';

const ITEM = { id: '7', image_url: IMAGE, audio_url: toneWav(), page_url: 'javascript:window.__pwned=3', caption: PAYLOAD };

const MEDIA_FIELDS = [
  { name: 'photo', type: 'image', label: 'The photo', source: 'image_url', help: 'Look at the whole picture.' },
  { name: 'clip', type: 'audio', label: 'The recording', source: 'audio_url' },
  { name: 'source_page', type: 'link', label: 'Open the source page', source: 'page_url' },
  { name: 'animal', type: 'radio', options: ['cat', 'dog', 'bird'], help: 'Pick the animal you see and hear.' },
  { name: 'tags', type: 'checkboxes', options: ['indoor', 'outdoor', 'blurry'], required: false },
  { name: 'count', type: 'number', label: 'How many animals?', min: 1, max: 5 },
  { name: 'item_ref', type: 'hidden', value: 'item-{{id}}' },
];

describe('task page for a new worker, in Chromium', () => {
  let stack: Stack;
  let gateway: Gateway;
  let browser: Browser;

  const link = (runId: string, worker: string): string => localWorkerLink(gateway.url, stack.settings.secret, runId, worker);
  const state = (page: Page, value: string): Promise<unknown> => page.waitForSelector(`body[data-state="${value}"]`, { timeout: 90_000 });

  async function openPage(url: string, viewport = { width: 1000, height: 900 }, prepare?: (context: BrowserContext) => Promise<void>): Promise<Page> {
    // The test's probes are evaluated as strings: allowed whatever CSP the task page is served with.
    const context = await browser.newContext({ viewport, bypassCSP: true });
    await prepare?.(context);
    const page = await context.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`script error on the task page: ${err.message}`);
    });
    await page.goto(url);
    return page;
  }

  function mediaConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return formConfig(
      {
        task_title: 'Name the animal',
        task_description: 'Look at the photo, listen to the clip, and say which animal it is.',
        task_reward: 0.25,
        assignment_duration_seconds: 600,
        provider: { type: 'local', workers: ['alice', 'bob', 'carol'] },
        blueprint: { type: 'static-form', fields: MEDIA_FIELDS, instructions: 'One animal per item.' },
        data: [ITEM],
        ...overrides,
      },
      1,
    );
  }

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    stack = await startStack('sqlite');
    gateway = await startTestGateway(stack);
    browser = await launchChromium(['--autoplay-policy=no-user-gesture-required']);
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await stack?.stop();
  });

  it('shows the run\'s title, pay and time, the unit\'s image and audio, and submits radio, checkboxes, number and hidden values', async () => {
    const runId = await launchRunning(stack, mediaConfig());
    const page = await openPage(link(runId, 'alice'));
    await state(page, 'working');

    expect(await page.title()).toBe('Name the animal');
    expect(await page.textContent('#hl-title')).toBe('Name the animal');
    expect(await page.textContent('#hl-description')).toContain('listen to the clip');
    expect(await page.textContent('#hl-reward')).toBe('Pays $0.25 per unit');
    expect(await page.textContent('#hl-item')).toBe('Item 1 of 1');
    expect(await page.textContent('#hl-time-left')).toMatch(/^Time left: (10:00|9:[0-5]\d)$/);
    expect(await page.getAttribute('link[rel="icon"]', 'href')).toBe('/assets/favicon.svg');
    expect((await fetch(`${gateway.url}/assets/favicon.svg`)).status).toBe(200);

    // The image is loaded and drawn; the audio clip is playable (its length is known).
    await page.waitForFunction("document.getElementById('hl-field-photo').complete && document.getElementById('hl-field-photo').naturalWidth > 0");
    expect(await page.evaluate<number>("document.getElementById('hl-field-photo').naturalWidth")).toBe(480);
    await page.waitForFunction("document.getElementById('hl-field-clip').readyState >= 1", undefined, { timeout: 30_000 });
    expect(await page.evaluate<number>("document.getElementById('hl-field-clip').duration")).toBeCloseTo(0.5, 1);
    // A `javascript:` URL from the data is never put in a link.
    expect(await page.getAttribute('#hl-field-source_page', 'href')).toBeNull();
    // The URLs are shown as media, not repeated as text; the caption is shown as text and never ran.
    const dataText = await page.textContent('#hl-data');
    expect(dataText).not.toContain('data:image');
    expect(dataText).toContain(PAYLOAD);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.textContent('#hl-field-animal-help')).toBe('Pick the animal you see and hear.');
    expect(await page.getAttribute('#hl-field-count', 'min')).toBe('1');
    expect(await page.getAttribute('#hl-field-count', 'max')).toBe('5');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'task-image-audio.png'), fullPage: true });

    await page.check('#hl-field-animal-1');
    await page.check('#hl-field-tags-0');
    await page.check('#hl-field-tags-2');
    // Out of bounds: the browser keeps the form from being sent, nothing reaches the gateway.
    await page.fill('#hl-field-count', '9');
    await page.click('#hl-submit');
    expect(await page.getAttribute('body', 'data-state')).toBe('working');
    await page.fill('#hl-field-count', '2');
    await page.click('#hl-submit');
    await state(page, 'submitted');

    const worker = await stack.db.em().findOneOrFail(Worker, { provider: 'local', providerWorkerId: 'alice' });
    const agent = await eventually(
      async () => (await stack.db.em().findOne(Agent, { worker: worker.id, taskRun: runId, status: 'completed' })) ?? undefined,
      "alice's submission to be stored",
    );
    expect(agent.submission).toEqual({ animal: 'dog', tags: ['indoor', 'blurry'], count: 2, item_ref: 'item-7' });
    await page.context().close();
  });

  it('says "item k of up to n": k counts the worker\'s units of the run, n the most they can get (items, or the per-worker cap)', async () => {
    const config = formConfig(
      { provider: { type: 'local', workers: ['dave'] }, maximum_units_per_worker: 2, data: ['one', 'two', 'three'].map((text) => ({ text })) },
      3,
    );
    const runId = await launchRunning(stack, config);
    const page = await openPage(link(runId, 'dave'));
    await state(page, 'working');
    expect(await page.isVisible('#hl-item')).toBe(true);
    expect(await page.textContent('#hl-item')).toBe('Item 1 of up to 2');
    await page.selectOption('#hl-field-label', 'positive');
    await page.click('#hl-submit');
    await state(page, 'submitted');
    await page.click('#hl-more');
    await state(page, 'working');
    // The cap (2) is lower than the run's 3 items, and this is the worker's last unit: exact.
    expect(await page.textContent('#hl-item')).toBe('Item 2 of 2');
    await page.context().close();
  });

  it('after "more", shows the next unit even when its agent packet already says in_task (it started before the gateway read it)', async () => {
    const config = formConfig({ provider: { type: 'local', workers: ['erin'] }, data: ['one', 'two'].map((text) => ({ text })) }, 2);
    const runId = await launchRunning(stack, config);
    let afterMore = false;
    const agentStatusesAfterMore: string[] = [];
    // The race made certain: the next unit's assignment workflow has started it (accepted -> in_task)
    // before the gateway reads the agent for its packet. The page must not keep the last unit's "submitted".
    const page = await openPage(link(runId, 'erin'), undefined, (context) =>
      context.routeWebSocket(/\/ws$/, (ws) => {
        const server = ws.connectToServer();
        server.onMessage((message) => {
          const packet = JSON.parse(String(message)) as { type: string; status?: string };
          if (afterMore && packet.type === 'agent') {
            if (packet.status === 'accepted') packet.status = 'in_task';
            agentStatusesAfterMore.push(packet.status!);
          }
          ws.send(JSON.stringify(packet));
        });
      }),
    );
    await state(page, 'working');
    await page.selectOption('#hl-field-label', 'positive');
    await page.click('#hl-submit');
    await state(page, 'submitted');
    afterMore = true;
    await page.click('#hl-more');
    await state(page, 'working');
    expect(agentStatusesAfterMore).toEqual(['in_task']);
    expect(await page.textContent('#hl-item')).toBe('Item 2 of 2');
    await page.context().close();
  });

  it('fits a phone-sized screen, and a refused worker reads a sentence, not a code', async () => {
    const runId = await launchRunning(stack, mediaConfig());
    const alice = await openPage(link(runId, 'alice'), { width: 390, height: 844 });
    await state(alice, 'working');
    await alice.waitForFunction("document.getElementById('hl-field-photo').naturalWidth > 0");
    const overflow = await alice.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(1);
    expect(await alice.evaluate<number>("document.getElementById('hl-field-photo').getBoundingClientRect().width")).toBeLessThanOrEqual(390);
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'task-phone.png'), fullPage: true });

    const bob = await openPage(link(runId, 'bob'), { width: 390, height: 844 });
    await state(bob, 'no_work');
    const message = await bob.textContent('#hl-message');
    expect(message).toBe('There is no work available for you right now.');
    await bob.screenshot({ path: path.join(SCREENSHOTS, 'task-refused-phone.png'), fullPage: true });
    await alice.context().close();
    await bob.context().close();
  });

  it('fills {{key}} in a custom template\'s attributes, escaped, and never as a javascript: URL', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hitloop-media-template-'));
    const template = path.join(dir, 'template.html');
    writeFileSync(
      template,
      '<figure><img id="t-img" src="{{image_url}}" alt="{{caption}}" title="Item {{id}}"></figure>' +
        '<audio id="t-audio" controls src="{{audio_url}}"></audio>' +
        '<p><a id="t-link" href="{{page_url}}" onclick="{{caption}}">source</a></p>' +
        '<p id="t-caption">{{caption}}</p><input name="answer" required>',
    );
    const runId = await launchRunning(stack, mediaConfig({ blueprint: { type: 'static-form', template } }));
    const page = await openPage(link(runId, 'carol'));
    await state(page, 'working');
    await page.waitForFunction("document.getElementById('t-img').complete && document.getElementById('t-img').naturalWidth > 0");
    expect(await page.getAttribute('#t-img', 'alt')).toBe(PAYLOAD);
    expect(await page.getAttribute('#t-img', 'title')).toBe('Item 7');
    expect(await page.getAttribute('#t-audio', 'src')).toBe(ITEM.audio_url);
    expect(await page.getAttribute('#t-link', 'href')).toBeNull();
    expect(await page.getAttribute('#t-link', 'onclick')).toBeNull();
    expect(await page.textContent('#t-caption')).toBe(PAYLOAD);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'task-template.png'), fullPage: true });
    await page.context().close();
  });
});
