/**
 * The operator console in a real Chromium (playwright-core) against a real gateway, Temporal
 * server and SQLite: the operator logs in, watches a run's progress move while workers submit,
 * changes a cap (and sees a refusal), reviews units with the keyboard, pays a bonus once however
 * often the button is clicked, downloads an export; item data carrying script payloads is shown as
 * text and never runs. Screenshots go to test/screenshots/ (gitignored).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Bonus, ProviderCall, Unit } from '../model/entities.ts';
import { runStatusQuery, taskRunWorkflowId } from '../workflows/definitions.ts';
import { completeUnit, type Assigned } from './support/completeUnits.ts';
import { formConfig } from './support/configs.ts';
import { IMAGE, toneWav } from './support/media.ts';
import { launchRunning, startTestGateway } from './gateway.helpers.ts';
import { startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'console-password-for-tests';
const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

describe('operator console in Chromium', () => {
  let stack: Stack;
  let gateway: Gateway;
  let browser: Browser;
  let page: Page;
  let runId: string;
  const done: Assigned[] = [];


  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    stack = await startStack('sqlite');
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    const data = [{ text: PAYLOAD }, ...Array.from({ length: 5 }, (_, i) => ({ text: `sentence ${i + 1}` }))];
    runId = await launchRunning(stack, formConfig({ data, max_spend: 20 }, 6));
    browser = await launchChromium();
    // The test's own probes are evaluated as strings, which the console's CSP forbids; the page's
    // escaping is what this file tests (the CSP header itself: test/api.test.ts).
    const context = await browser.newContext({ acceptDownloads: true, bypassCSP: true, viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`script error on the console: ${err.message}`);
    });
    page.on('dialog', (dialog) => void dialog.accept());
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await stack?.stop();
  });

  it('refuses a wrong password, logs in with the right one, and lists the run once', async () => {
    await page.goto(`${gateway.url}/admin`);
    await page.waitForSelector('#login');
    await page.fill('#password', 'wrong password');
    await page.click('#login button[type="submit"]');
    await page.waitForFunction(`document.getElementById('login-error')?.textContent?.includes('not the operator password')`);
    await page.fill('#password', PASSWORD);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector(`#runs tr[data-run-id="${runId}"]`, { timeout: 60_000 });
    expect(await page.locator(`#runs tr[data-run-id="${runId}"]`).count()).toBe(1);
    expect(await page.textContent(`#runs tr[data-run-id="${runId}"]`)).toContain('/ $20.00');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-runs.png'), fullPage: true });
  });

  it('shows the run\'s progress moving while workers submit, without a reload', async () => {
    await page.goto(`${gateway.url}/admin#/runs/${runId}`);
    await page.waitForSelector('#run-progress');
    const before = Number(await page.getAttribute('#run-progress', 'data-done'));
    expect(before).toBe(0);
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => navigations.push(frame.url()));
    for (const worker of ['con-ann', 'con-bob', 'con-cat', 'con-dan']) {
      done.push(await completeUnit(stack.env.client, stack.db, runId, worker, { label: 'positive' }));
    }
    await page.waitForFunction(`Number(document.getElementById('run-progress')?.dataset.done) >= 4`, undefined, { timeout: 60_000 });
    expect(await page.textContent('#run-progress')).toBe('4 / 6');
    expect(navigations).toEqual([]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-run.png'), fullPage: true });
  });

  it('changes a cap live, and shows a refused change without applying it', async () => {
    await page.waitForSelector('#limits:not([hidden])');
    await page.fill('#limit-max_num_concurrent_units', '3');
    await page.click('#save-limits');
    await page.waitForFunction(`document.getElementById('flash')?.textContent?.includes('Caps saved')`);
    const limits = async () => (await stack.env.client.workflow.getHandle(taskRunWorkflowId(runId)).query(runStatusQuery)).limits;
    expect((await limits()).max_num_concurrent_units).toBe(3);
    await page.fill('#limit-task_lifetime_seconds', '0');
    await page.click('#save-limits');
    await page.waitForFunction(`(document.getElementById('limits-error')?.textContent ?? '').length > 0`);
    expect(await page.textContent('#limits-error')).toContain('task_lifetime_seconds');
    expect((await limits()).task_lifetime_seconds).toBeGreaterThan(0);
  });

  it('downloads the export', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-jsonl')]);
    const file = await download.path();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(download.suggestedFilename()).toBe(`${runId}.jsonl`);
  });

  it('reviews units with the keyboard; item HTML is shown as text and never runs', async () => {
    await page.goto(`${gateway.url}/admin#/runs/${runId}/review`);
    await page.waitForSelector('.unit');
    expect(await page.locator('.unit').count()).toBe(4);
    // The payload is on the page as text, and nothing of it ran.
    expect(await page.textContent('#units')).toContain(PAYLOAD);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.locator('#units img, #units script').count()).toBe(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-review.png'), fullPage: true });

    const first = await page.getAttribute('.unit.selected', 'data-unit-id');
    // Each key waits for its answer on the page (the selection moves on once a review is done).
    const review = async (key: string, unitId: string, said: string, status: string): Promise<void> => {
      await page.keyboard.press(key);
      await page.locator('#flash', { hasText: `${said} unit ${unitId}` }).waitFor({ timeout: 90_000 });
      expect((await stack.db.em().findOne(Unit, unitId))?.status).toBe(status);
    };
    await review('a', first!, 'Approved', 'accepted');
    // Approving moved the selection on; `j` moves once more, `r` rejects that one.
    const second = await page.getAttribute('.unit.selected', 'data-unit-id');
    expect(second).not.toBe(first);
    await page.keyboard.press('j');
    const third = await page.getAttribute('.unit.selected', 'data-unit-id');
    expect(third).not.toBe(second);
    await review('r', third!, 'Rejected', 'rejected');
    await page.keyboard.press('k');
    await page.keyboard.press('k');
    expect(await page.getAttribute('.unit.selected', 'data-unit-id')).toBe(second);
    await review('s', second!, 'Soft-rejected', 'soft_rejected');
    expect((await stack.db.em().findOne(Unit, first!))?.status).toBe('accepted');
  });

  it('renders a unit for review with the run\'s blueprint: image, audio, choices, number and text as on the task page, payloads as text', async () => {
    const fields = [
      { name: 'photo', type: 'image', label: 'The photo', source: 'image_url', help: 'Look at the whole picture.' },
      { name: 'clip', type: 'audio', label: 'The recording', source: 'audio_url' },
      { name: 'source_page', type: 'link', label: 'Source page', source: 'page_url' },
      { name: 'animal', type: 'radio', options: ['cat', 'dog', 'bird'] },
      { name: 'tags', type: 'checkboxes', options: ['indoor', 'outdoor', 'blurry'], required: false },
      { name: 'sure', type: 'checkbox', required: false },
      { name: 'count', type: 'number', min: 1, max: 5 },
      { name: 'note', type: 'textarea' },
    ];
    const item = { image_url: IMAGE, audio_url: toneWav(), page_url: 'javascript:window.__pwned=3', caption: PAYLOAD };
    const mediaRun = await launchRunning(stack, formConfig({ task_title: 'Name the animal', blueprint: { type: 'static-form', fields }, data: [item] }, 1));
    await completeUnit(stack.env.client, stack.db, mediaRun, 'con-media', { animal: 'dog', tags: ['indoor', 'blurry'], sure: true, count: 2, note: PAYLOAD });
    await page.goto(`${gateway.url}/admin#/runs/${mediaRun}/review`);
    await page.waitForSelector('.unit .rv');
    const unit = page.locator('.unit').first();
    // The item as the task page shows it: the picture drawn, the clip playable, no javascript: link.
    await page.waitForFunction("(() => { const img = document.querySelector('.rv-image img'); return img && img.complete && img.naturalWidth === 480; })()");
    await page.waitForFunction("document.querySelector('.rv-audio audio')?.readyState >= 1", undefined, { timeout: 30_000 });
    expect(await page.evaluate<number>("document.querySelector('.rv-audio audio').duration")).toBeCloseTo(0.5, 1);
    expect(await unit.locator('.rv-link a').count()).toBe(0);
    expect(await unit.locator('.rv-link').textContent()).toContain('(no link)');
    expect(await unit.locator('.rv-image').textContent()).toContain('Look at the whole picture.');
    expect(await unit.locator('.rv[data-part="item"][data-field="caption"] .rv-value').textContent()).toBe(PAYLOAD);
    // The answers with the form's field types: the chosen options among all, the number with its bounds.
    const checked = async (field: string): Promise<string[]> =>
      unit.locator(`.rv[data-field="${field}"] label:has(input:checked)`).evaluateAll((labels) => labels.map((l) => (l.textContent ?? '').trim()));
    expect(await unit.locator('.rv[data-field="animal"] input[type="radio"]').count()).toBe(3);
    expect(await checked('animal')).toEqual(['dog']);
    expect(await checked('tags')).toEqual(['indoor', 'blurry']);
    expect(await checked('sure')).toEqual(['yes']);
    expect(await unit.locator('.rv[data-field="count"]').textContent()).toContain('2 (1 to 5)');
    expect(await unit.locator('.rv[data-part="answer"][data-field="note"] .rv-value').textContent()).toBe(PAYLOAD);
    expect(await unit.locator('input:not([disabled])').count()).toBe(0);
    // Nothing of either payload ran or became markup.
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.locator('#units script').count()).toBe(0);
    expect(await page.locator('#units img').count()).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-review-media.png'), fullPage: true });
    // Back to the first run's review, where the keyboard review left its selection.
    await page.goto(`${gateway.url}/admin#/runs/${runId}/review`);
    await page.waitForSelector('.unit.selected');
  });

  it('pays a bonus once, however often its button is clicked', async () => {
    const unitId = await page.getAttribute('.unit.selected', 'data-unit-id');
    await page.keyboard.press('b');
    const form = page.locator(`.unit[data-unit-id="${unitId}"] form.bonus-form`);
    await form.waitFor({ timeout: 10_000 });
    await form.locator('input[name="amount"]').fill('0.75');
    // Two clicks in a row: two requests with the form's one request key.
    await form.locator('button[data-action="pay-bonus"]').dblclick();
    await page.locator('#flash', { hasText: 'Bonus of $0.75' }).waitFor({ timeout: 90_000 });
    // The reviewed unit is listed under "all", with its bonus.
    await page.selectOption('#status-filter', 'all');
    await page.click('text=Apply');
    await page.locator(`.unit[data-unit-id="${unitId}"] .bonus`, { hasText: 'Bonus $0.75 (paid)' }).waitFor({ timeout: 30_000 });
    const bonuses = await stack.db.em().find(Bonus, { unit: unitId! });
    expect(bonuses).toHaveLength(1);
    expect(bonuses[0]!.status).toBe('paid');
    expect(await stack.db.em().count(ProviderCall, { operation: 'payBonus', requestKey: bonuses[0]!.requestKey })).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-review-bonus.png'), fullPage: true });
  }, 240_000);

  it('works on a phone-sized screen: nothing overflows the viewport, every runs cell is whole and labelled', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.goto(`${gateway.url}/admin#/runs`);
    await page.waitForSelector(`#runs tr[data-run-id="${runId}"]`);
    expect(await page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    // Not cut inside its box either: the table needs no scrolling, and each cell lies within the screen.
    expect(await page.evaluate<number>("document.querySelector('#runs').parentElement.scrollWidth - document.querySelector('#runs').parentElement.clientWidth")).toBeLessThanOrEqual(0);
    const cells = await page.$$eval(`#runs tr[data-run-id="${runId}"] td`, (tds) =>
      tds.map((td) => ({ left: td.getBoundingClientRect().left, right: td.getBoundingClientRect().right, label: td.dataset.label, text: td.textContent })),
    );
    expect(cells.map((cell) => cell.label)).toEqual(['Run', 'Task', 'Status', 'Progress', 'Spend / max', 'Time left']);
    for (const cell of cells) {
      expect(cell.left, JSON.stringify(cell)).toBeGreaterThanOrEqual(0);
      expect(cell.right, JSON.stringify(cell)).toBeLessThanOrEqual(375);
    }
    expect(cells[0]!.text).toBe(runId);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-runs-phone.png'), fullPage: true });
  });
});
