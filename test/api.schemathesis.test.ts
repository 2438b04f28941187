/**
 * The JSON API against its own OpenAPI document, checked by schemathesis (PyPI, from
 * scripts/schemathesis-venv; scripts/test prepares it and sets HITLOOP_SCHEMATHESIS): schemathesis
 * reads /api/v1/openapi.json from a live gateway (real Temporal, SQLite, a run with submitted units)
 * and sends generated valid and invalid requests to every operation with the operator's Bearer token.
 * Every answer must be one the document lists, match its schema, and never be a server error.
 *
 * The operations on a run get real run ids (a schemathesis config file), so that they reach the
 * run's logic instead of answering 404 to random ids: shutdown its own run, every other one the run
 * with submitted units, which shutting down would turn into 404s for the caps.
 * POST /api/v1/session is left out: its generated wrong passwords would trip the login limit
 * (api/loginLimits.ts) and every later request would answer 429. test/api.test.ts covers it.
 *
 * Bounded by --max-examples alone (about a minute here): --max-time would make the fuzzing and
 * stateful phases repeat until that time is spent.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { completeUnit } from './support/completeUnits.ts';
import { formConfig } from './support/configs.ts';
import { startTestGateway } from './gateway.helpers.ts';
import { startStack, type Stack } from './support/stack.ts';

const PASSWORD = 'schemathesis-operator-password';

function schemathesisCommand(): string {
  const given = process.env.HITLOOP_SCHEMATHESIS;
  if (given) return given;
  const script = fileURLToPath(new URL('../scripts/schemathesis-venv', import.meta.url));
  return execFileSync(script, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim();
}

describe('operator API against its OpenAPI document (schemathesis)', () => {
  let stack: Stack;
  let gateway: Gateway;
  let runId: string;
  let runToShutDown: string;

  beforeAll(async () => {
    stack = await startStack('sqlite');
    stack.settings.operatorPassword = PASSWORD;
    gateway = await startTestGateway(stack);
    ({ runId } = await stack.operator.launch(formConfig({ data: [{ text: '<b>one</b>' }, { text: 'two' }, { text: 'three' }] }, 3)));
    for (const worker of ['st-ann', 'st-bob']) await completeUnit(stack.env.client, stack.db, runId, worker, { label: 'positive' });
    ({ runId: runToShutDown } = await stack.operator.launch(formConfig({}, 2)));
  }, 300_000);
  afterAll(async () => {
    await gateway?.close();
    await stack?.stop();
  });

  it('answers every generated request as its OpenAPI document says, with no server error', async () => {
    const reports = mkdtempSync(path.join(tmpdir(), 'hitloop-schemathesis-'));
    const junit = path.join(reports, 'junit.xml');
    const config = path.join(reports, 'schemathesis.toml');
    writeFileSync(
      config,
      [
        '[parameters]',
        `"path.runId" = ${JSON.stringify(runId)}`,
        '',
        '[[operations]]',
        'include-operation-id = "postRunsByRunIdShutdown"',
        `parameters = { "path.runId" = ${JSON.stringify(runToShutDown)} }`,
        '',
      ].join('\n'),
    );
    const args = [
      '--config-file',
      config,
      'run',
      `${gateway.url}/api/v1/openapi.json`,
      '--header',
      `Authorization: Bearer ${PASSWORD}`,
      '--checks',
      'all',
      '--exclude-operation-id',
      'postSession',
      '--max-examples',
      '20',
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
      execFile(schemathesisCommand(), args, { cwd: reports, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 900_000, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
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
