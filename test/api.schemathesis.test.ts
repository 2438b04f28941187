/**
 * The JSON API against its own OpenAPI document, checked by schemathesis (PyPI, from
 * scripts/schemathesis-venv; set HITLOOP_SCHEMATHESIS to run this test): schemathesis
 * reads /api/v1/openapi.json from a live gateway (real Temporal, SQLite, a run with submitted units)
 * and sends generated valid and invalid requests to every operation with the operator's Bearer token.
 * Every answer must be one the document lists, match its schema, and never be a server error.
 *
 * POST /api/v1/session is left out: its generated wrong passwords would trip the login limit
 * (api/loginLimits.ts) and every later request would answer 429. test/api.test.ts covers it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { completeUnit } from './support/completeUnits.ts';
import { formConfig } from './support/configs.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'schemathesis-operator-password';

// Opt-in (DEVELOPERS.md): a run takes minutes. HITLOOP_SCHEMATHESIS is the command, from scripts/schemathesis-venv.
const SCHEMATHESIS = process.env.HITLOOP_SCHEMATHESIS;

describe.skipIf(!SCHEMATHESIS)('operator API against its OpenAPI document (schemathesis)', () => {
  let stack: Stack;
  let gateway: Gateway;

  beforeAll(async () => {
    stack = await startStack('sqlite');
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    const { runId } = await stack.operator.launch(formConfig({ data: [{ text: '<b>one</b>' }, { text: 'two' }, { text: 'three' }] }, 3));
    for (const worker of ['st-ann', 'st-bob']) await completeUnit(stack.env.client, stack.db, runId, worker, { label: 'positive' });
  }, 300_000);
  afterAll(async () => {
    await gateway?.close();
    await stack?.stop();
  });

  it('answers every generated request as its OpenAPI document says, with no server error', async () => {
    const reports = mkdtempSync(path.join(tmpdir(), 'hitloop-schemathesis-'));
    const junit = path.join(reports, 'junit.xml');
    const args = [
      'run',
      `${gateway.url}/api/v1/openapi.json`,
      '--header',
      `Authorization: Bearer ${PASSWORD}`,
      '--checks',
      'all',
      '--exclude-operation-id',
      'postSession',
      '--max-examples',
      '5',
      '--max-time',
      '400',
      '--seed',
      '1',
      '--workers',
      '1',
      '--request-timeout',
      '120',
      '--report',
      'junit',
      '--report-junit-path',
      junit,
      '--no-color',
    ];
    const result = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(SCHEMATHESIS!, args, { cwd: reports, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 900_000, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, out: `${stdout}\n${stderr}` });
      });
    });
    expect(result.code, result.out).toBe(0);
    // It really ran: the report lists the operations it tested.
    const report = readFileSync(junit, 'utf8');
    const cases = report.match(/<testcase /g) ?? [];
    expect(cases.length, report).toBeGreaterThanOrEqual(14);
  }, 900_000);
});
