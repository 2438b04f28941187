/**
 * What a person sees when the gateway holds its promises under hostile conditions (issue 15), in a
 * real Chromium against real gateways, Temporal and SQLite: the task page works under its content
 * policy; a page of another site can neither frame it nor open a socket to the gateway; a page
 * whose agent was taken over from another gateway says so and stops; and a page reloaded after its
 * submit was acknowledged, while the workers are down, shows "submitted", not the form again.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { TokenSigner } from '../gateway/tokens.ts';
import { Agent, Worker } from '../model/entities.ts';
import { connect, launchRunning, startTestGateway } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

describe('the task page against hostile conditions, in Chromium', () => {
  let stack: Stack;
  let gwA: Gateway;
  let gwB: Gateway;
  let browser: Browser;
  let elsewhere: Server;
  let elsewhereUrl: string;
  let elsewhereHtml = '';

  async function openPage(url: string, consoleLines: string[] = []): Promise<Page> {
    const page = await browser.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`script error on the page: ${err.message}`);
    });
    page.on('console', (msg) => consoleLines.push(msg.text()));
    await page.goto(url);
    return page;
  }

  const state = (page: Page, value: string): Promise<unknown> => page.waitForSelector(`body[data-state="${value}"]`, { timeout: 60_000 });
  const link = (gateway: Gateway, runId: string, worker: string): string => `${gateway.url}/task/${runId}?worker_id=${worker}`;

  async function agentOf(runId: string, worker: string): Promise<Agent> {
    return eventually(async () => {
      const w = await stack.db.em().findOne(Worker, { provider: 'mock', providerWorkerId: worker });
      return w ? ((await stack.db.em().findOne(Agent, { worker: w.id, taskRun: runId })) ?? undefined) : undefined;
    }, `the agent of ${worker}`);
  }

  beforeAll(async () => {
    stack = await startStack('sqlite');
    gwA = await startTestGateway(stack, { heartbeatMs: 300, deadAfterMs: 60_000 });
    gwB = await startTestGateway(stack, { heartbeatMs: 300, deadAfterMs: 60_000 });
    browser = await launchChromium();
    // Another site (another origin: another port), serving whatever page a test sets.
    elsewhere = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(elsewhereHtml);
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => elsewhere?.close(resolve));
    await gwA?.close();
    await gwB?.close();
    await stack?.stop();
  });

  it('works under its content policy: no violation reported, submitted as typed', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const consoleLines: string[] = [];
    const page = await openPage(link(gwA, runId, 'policy-abiding'), consoleLines);
    await state(page, 'working');
    await page.selectOption('#hl-field-label', 'negative');
    await page.click('#hl-submit');
    await state(page, 'submitted');
    expect(consoleLines.filter((line) => /content security policy/i.test(line))).toEqual([]);
    expect((await agentOf(runId, 'policy-abiding')).submission).toEqual({ label: 'negative' });
    await page.close();
    await stack.operator.shutdown(runId);
  });

  it('a page of another site can neither frame the task page nor open a socket to the gateway', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    elsewhereHtml = `<!doctype html><html><body data-ws="pending">
<iframe src="${link(gwA, runId, 'framed')}"></iframe>
<script>
const ws = new WebSocket(${JSON.stringify(gwA.wsUrl)});
ws.onopen = () => { document.body.dataset.ws = 'open'; };
ws.onerror = () => { document.body.dataset.ws = 'refused'; };
</script></body></html>`;
    const consoleLines: string[] = [];
    const page = await openPage(elsewhereUrl, consoleLines);
    await page.waitForSelector('body[data-ws="refused"]', { timeout: 30_000 });
    await eventually(async () => (consoleLines.some((line) => /frame-ancestors/.test(line)) ? true : undefined), 'Chromium to refuse the frame', 30_000);
    // The framed page never ran: nobody registered as "framed".
    expect(await stack.db.em().findOne(Worker, { provider: 'mock', providerWorkerId: 'framed' })).toBeNull();
    await page.close();
    await stack.operator.shutdown(runId);
  });

  it('a page whose agent is taken over on another gateway says it is open elsewhere; the other connection carries on', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const page = await openPage(link(gwA, runId, 'two-windows'));
    await state(page, 'working');
    const agent = await agentOf(runId, 'two-windows');
    const token = new TokenSigner(stack.settings.secret).sign({
      agentId: agent.id,
      runId,
      unitId: agent.unit.id,
      assignmentId: agent.assignment.id,
      workerId: agent.worker.id,
    });
    const other = await connect(gwB);
    other.resume(runId, agent.id, token, 0);
    await other.expect((p) => p.type === 'agent');
    // (A locator, not waitForFunction: the page's policy forbids the eval that would need.)
    await page.locator('#hl-status', { hasText: 'Open in another window' }).waitFor({ timeout: 30_000 });
    expect(await page.getAttribute('body', 'data-state')).toBe('ended');
    other.send({ type: 'submit', submitKey: 'from-b', data: { label: 'positive' } });
    await other.expect((p) => p.type === 'submit_ack');
    other.close();
    await page.close();
    await stack.operator.shutdown(runId);
  });

  it('reloaded after its submit was acknowledged, while the workers are down, the page shows "submitted", never the form', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const page = await openPage(link(gwA, runId, 'reloader'));
    await state(page, 'working');
    await stack.stopWorker();
    try {
      await page.selectOption('#hl-field-label', 'positive');
      await page.click('#hl-submit');
      // "Saving…" follows the submit_ack.
      await page.locator('#hl-status', { hasText: 'Saving…' }).waitFor({ timeout: 60_000 });
      await eventually(async () => ((await agentOf(runId, 'reloader')).submitKey ? true : undefined), 'the submission to be claimed');
      await page.reload();
      await state(page, 'submitted');
      expect(await page.isVisible('#hl-form')).toBe(false);
    } finally {
      await stack.startWorker();
    }
    await eventually(async () => ((await agentOf(runId, 'reloader')).status === 'completed' ? true : undefined), 'the submission to be stored');
    expect((await agentOf(runId, 'reloader')).submission).toEqual({ label: 'positive' });
    await page.close();
    await stack.operator.shutdown(runId);
  }, 300_000);
});
