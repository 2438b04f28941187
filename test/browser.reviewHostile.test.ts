/**
 * The console's review page in a real Chromium showing hostile submitted units (issue 14, "HTML in
 * item data or submissions is escaped everywhere"): HTML in item and answer keys and values,
 * `javascript:` and `data:` URLs in image, audio, video and link fields, an SVG carrying script,
 * attribute-breaking URLs, values of 100,000 characters, and every kind of JSON value. The page is
 * opened with its content policy bypassed, so only the console's own escaping stands between a
 * payload and its execution: no payload may run (no alert, no `window.__pwned`), none may become
 * markup, every value is on the page as text, nothing overflows a phone's width, and no script
 * error occurs. The units are written straight into the database (test/support/seedRun.ts): the task
 * page would refuse most of these submissions, but review must hold whatever the database holds.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { launchChromium } from './support/chromium.ts';
import { formConfig } from './support/configs.ts';
import { seedFinishedRun } from './support/seedRun.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'review-hostile-password';
const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const SCRIPT = '<script>window.__pwned=1;alert(1)</script>';
const IMG = '<img src=x onerror="window.__pwned=2;alert(2)">';
const SVG_WITH_SCRIPT = `data:image/svg+xml,${encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="window.__pwned=3;alert(3)"><script>window.__pwned=4;alert(4)</script><rect width="40" height="40" fill="red"/></svg>')}`;
const LONG = `${SCRIPT}${'y'.repeat(100_000)}`;
const LONG_KEY = `${IMG}${'k'.repeat(2000)}`;

const fields = [
  { name: 'photo', type: 'image', source: 'image' },
  { name: 'clip', type: 'audio', source: 'audio' },
  { name: 'film', type: 'video', source: 'video' },
  { name: 'source_page', type: 'link', source: 'page' },
  { name: 'animal', type: 'radio', options: ['cat', SCRIPT] },
  { name: 'count', type: 'number', required: false },
  { name: 'sure', type: 'checkbox', required: false },
  { name: 'note', type: 'textarea', required: false },
];

/** Item data per unit: the hostile URLs, keys and values. */
const items: Array<Record<string, unknown>> = [
  { image: 'javascript:window.__pwned=5;alert(5)', audio: 'data:text/html,<script>alert(6)</script>', video: 'JaVaScRiPt:alert(7)', page: 'javascript:window.__pwned=8;alert(8)', [IMG]: SCRIPT },
  { image: SVG_WITH_SCRIPT, audio: 'vbscript:msgbox(9)', video: { src: 'javascript:alert(10)' }, page: 'data:text/html;base64,PHNjcmlwdD5hbGVydCgxMSk8L3NjcmlwdD4=', [SCRIPT]: IMG },
  { image: 'https://example.invalid/x.png" onerror="window.__pwned=12;alert(12)', audio: ' java\tscript:alert(13)', video: null, page: `https://example.invalid/${'p'.repeat(3000)}?q=<script>alert(14)</script>`, long: LONG, [LONG_KEY]: 'v' },
  { image: 42, audio: ['javascript:alert(15)'], video: true, page: { href: 'javascript:alert(16)' }, nested: { a: [1, { b: SCRIPT }], n: null }, list: [IMG, 2, null], number: -1.5e300, nothing: null },
];

/** The submission of each unit: hostile keys, values, and answers of other shapes than their fields. */
const submissions: Array<Record<string, unknown>> = [
  { animal: SCRIPT, count: 3, sure: true, note: IMG, [SCRIPT]: IMG },
  { animal: { toString: SCRIPT }, count: SCRIPT, sure: 'true', note: ['a', SCRIPT], [`${IMG}-key`]: 1 },
  { animal: 7, note: LONG, extra: null },
  { animal: 'cat', count: 0, sure: false, note: '', deep: { a: { b: { c: [IMG] } } } },
];

describe('the review page holding hostile submitted units, in Chromium', () => {
  let stack: Stack;
  let gateway: Gateway;
  let browser: Browser;
  let page: Page;
  let runId: string;
  const dialogs: string[] = [];
  const scriptErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    stack = await startStack('sqlite', { worker: false });
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    const config = formConfig({ task_title: 'Hostile review', blueprint: { type: 'static-form', fields }, data: items }, items.length);
    runId = (await seedFinishedRun(stack.db, config, { units: items.length, workers: 2, submission: (i) => submissions[i]! })).runId;
    browser = await launchChromium();
    // Content policy bypassed: were anything parsed as markup, its script would run and be seen.
    const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(`${gateway.url}/admin`);
    await page.fill('#password', PASSWORD);
    await page.click('#login button[type="submit"]');
    // (The runs list asks Temporal, where a seeded run has no workflow: the review page reads the database.)
    await page.waitForSelector('#runs', { timeout: 60_000 });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await stack?.stop();
  });

  const card = (i: number) => page.locator(`.unit[data-unit-id="${runId}-a${i}-u0"]`);

  it('shows every unit with its payloads as text; nothing runs, nothing becomes markup, no unsafe URL is used', async () => {
    await page.goto(`${gateway.url}/admin#/runs/${runId}/review`);
    await page.waitForSelector('.unit .rv');
    expect(await page.locator('.unit').count()).toBe(items.length);
    // Time for anything injected to load and run (an image's onerror, an SVG's onload).
    await page.waitForLoadState('networkidle');

    // Keys and values as text, verbatim.
    const text = (await page.textContent('#units')) ?? '';
    for (const payload of [SCRIPT, IMG, `${IMG}-key`]) expect(text).toContain(payload);
    expect(await card(0).locator(`.rv[data-part="item"][data-field="${IMG.replace(/"/g, '\\"')}"] .rv-value`).textContent()).toBe(SCRIPT);
    expect(await card(1).locator('.rv[data-part="item"] .rv-label', { hasText: SCRIPT }).count()).toBe(1);
    expect(await card(0).locator('.rv[data-part="answer"][data-field="note"] .rv-value').textContent()).toBe(IMG);
    // The option and the chosen answer holding HTML are labels, not markup.
    expect(await card(0).locator('.rv[data-field="animal"] label:has(input:checked)').textContent()).toContain(SCRIPT);
    // Answers of another shape than their field's are shown as they are.
    expect(await card(1).locator('.rv[data-field="count"] .rv-value').textContent()).toBe(SCRIPT);
    expect(await card(1).locator('.rv[data-field="sure"] .rv-value').textContent()).toBe('true');
    expect(await card(1).locator('.rv[data-field="note"] .rv-value').textContent()).toBe(JSON.stringify(['a', SCRIPT]));
    expect(await card(1).locator('.rv[data-field="animal"] .rv-value').textContent()).toBe(JSON.stringify({ toString: SCRIPT }));
    expect(await card(2).locator('.rv[data-field="animal"] .rv-value').textContent()).toBe('7');
    // Non-string JSON as its JSON text; 100,000 characters whole.
    expect(await card(3).locator('.rv[data-part="item"][data-field="nested"] .rv-value').textContent()).toBe(JSON.stringify(items[3]!.nested));
    expect(await card(3).locator('.rv[data-part="item"][data-field="list"] .rv-value').textContent()).toBe(JSON.stringify(items[3]!.list));
    expect(await card(3).locator('.rv[data-part="item"][data-field="number"] .rv-value').textContent()).toBe('-1.5e+300');
    expect(await card(3).locator('.rv[data-part="item"][data-field="nothing"] .rv-value').textContent()).toBe('null');
    expect(await card(3).locator('.rv[data-part="answer"][data-field="deep"] .rv-value').textContent()).toBe(JSON.stringify(submissions[3]!.deep));
    expect((await card(2).locator('.rv[data-part="item"][data-field="long"] .rv-value').textContent()) === LONG).toBe(true);
    expect((await card(2).locator('.rv[data-part="answer"][data-field="note"] .rv-value').textContent()) === LONG).toBe(true);

    // Only safe URLs were used: the SVG as an image (its script inert), an https URL escaped; no link, no other media.
    const urls = await page.evaluate<Array<{ tag: string; url: string }>>(
      "[...document.querySelectorAll('#units [src], #units [href]')].map((el) => ({ tag: el.tagName, url: el.getAttribute('src') ?? el.getAttribute('href') }))",
    );
    expect(urls.map((u) => u.tag).sort()).toEqual(['A', 'IMG', 'IMG']);
    for (const { url } of urls) expect(url).toMatch(/^(https:\/\/example\.invalid\/|data:image\/svg\+xml,)/);
    expect(urls.find((u) => u.tag === 'A')!.url).toBe(`https://example.invalid/${'p'.repeat(3000)}?q=%3Cscript%3Ealert(14)%3C/script%3E`);
    expect(await card(2).locator('.rv[data-part="item"] .rv-label', { hasText: LONG_KEY }).count()).toBe(1);
    expect(await card(0).locator('.rv-image, .rv-audio, .rv-video, .rv-link').allTextContents()).toEqual(['Photo(no image)', 'Clip(no audio)', 'Film(no video)', 'Source page(no link)']);

    // Nothing ran and nothing of a payload became an element or an event handler.
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(scriptErrors).toEqual([]);
    expect(await page.locator('#units script, #units iframe, #units object, #units embed, #units svg').count()).toBe(0);
    const handlers = await page.evaluate<string[]>("[...document.querySelectorAll('#units *')].flatMap((el) => [...el.attributes].filter((a) => a.name.startsWith('on')).map((a) => el.tagName + ' ' + a.name))");
    expect(handlers).toEqual([]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-review-hostile.png'), fullPage: true });
  }, 120_000);

  it('keeps long values and keys inside a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForSelector('.unit .rv');
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(1);
    expect(scriptErrors).toEqual([]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-review-hostile-phone.png') });
  });
});
