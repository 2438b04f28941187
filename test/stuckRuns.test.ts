/**
 * Runs that used to get stuck without saying so (issue 15), on a real Temporal server and both
 * databases: a broken data or gold file fails the run at once with a message naming file and line
 * (the worker waiting for a unit is told the task is unavailable, in a sentence); a step that keeps
 * failing shows in the run's status as "stuck: <step> failing, N attempts: <message>"; and shutdown
 * ends such a run instead of waiting for ever.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mockProvider } from '../providers/mock.ts';
import { providers } from '../registry/index.ts';
import type { RunStatusReport } from '../operator/api.ts';
import { taskRunWorkflowId } from '../workflows/definitions.ts';
import { formConfig } from './support/configs.ts';
import { register } from './support/qualifyingAgents.ts';
import { eventually, startStack, type Dialect, type Stack } from './support/stack.ts';

const FORM = { type: 'static-form', fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }] };

/** A provider whose service is down: every setUpRun (or launchUnit) fails, retryably. */
const DOWN = 'the provider answered 503 Service Unavailable';
providers.register({ ...mockProvider, type: 'test-setup-down', setUpRun: () => Promise.reject(new Error(DOWN)) });
providers.register({ ...mockProvider, type: 'test-launch-down', launchUnit: () => Promise.reject(new Error(DOWN)) });

describe.each<Dialect>(['sqlite', 'postgresql'])('runs that cannot go on say so, on %s', (dialect) => {
  let stack: Stack;
  let tmp: string;
  beforeAll(async () => {
    stack = await startStack(dialect);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-stuck-'));
  });
  afterAll(async () => {
    await stack?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /**
   * Started as a plain Temporal client would (README: starting a run without the command line): the
   * operator's launch reads the files first and refuses, so only the workflow's own steps are tested.
   */
  async function startPlain(config: Record<string, unknown>): Promise<{ runId: string }> {
    const runId = `r-plain-${randomUUID().slice(0, 8)}`;
    await stack.env.client.workflow.start('TaskRunWorkflow', { taskQueue: stack.settings.taskQueue, workflowId: taskRunWorkflowId(runId), args: [config] });
    return { runId };
  }

  const writeFile = (name: string, text: string): string => {
    const file = path.join(tmp, `${dialect}-${name}`);
    fs.writeFileSync(file, text);
    return file;
  };

  it('a broken line in a data file fails the run at once, naming the file and the line', async () => {
    const file = writeFile('items.jsonl', '{"text": "one"}\n{"text": "two"\n{"text": "three"}\n');
    const config = formConfig({ data: { file, format: 'jsonl' } });
    // The operator's launch reads the file first: refused before a run exists.
    await expect(stack.operator.launch(config)).rejects.toThrow(`line 2 of ${file} is not valid JSON`);
    const { runId } = await startPlain(config);
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('failed');
    expect(final.failureReason).toContain(`line 2 of ${file} is not valid JSON`);
    expect(final.stuck).toBeNull();
  });

  it('a broken gold file: the waiting worker is told the task is unavailable, and the run fails naming the line', async () => {
    const gold = writeFile('gold.jsonl', '{"input": {"text": "g1"}, "expected": {"label": "positive"}}\nnot json at all\n');
    const { runId } = await startPlain(
      formConfig({ blueprint: FORM, gold: { enabled: true, data: { file: gold, format: 'jsonl' }, min_golds: 1, gold_every_units: 2 } }, 4),
    );
    const answer = await eventually(async () => {
      const r = await register(stack.env.client, runId, `gold-${dialect}`, `gold-${dialect}-key`);
      return r.outcome === 'refused' && r.reason === 'no_units_available' ? undefined : r;
    }, 'an answer to the registration');
    expect(answer).toMatchObject({ outcome: 'refused', reason: 'run_not_running' });
    const detail = (answer as { detail: string }).detail;
    expect(detail).toMatch(/unavailable/);
    // The worker sees a sentence, not the operator's details.
    expect(detail).not.toContain(gold);
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('failed');
    expect(final.failureReason).toContain(`line 2 of ${gold} is not valid JSON`);
  });

  it.each([
    ['test-setup-down', 'setUpProviderForRun'],
    ['test-launch-down', 'launchUnits'],
  ])('provider %s: status says which step is stuck, and shutdown ends the run', async (provider, stepName) => {
    const { runId } = await stack.operator.launch(formConfig({ provider }, 3));
    const stuck = await eventually(
      async () => {
        const s: RunStatusReport = await stack.operator.status(runId);
        return s.stuck ?? undefined;
      },
      `run ${runId} to report its stuck step`,
      90_000,
    );
    expect(stuck).toMatch(new RegExp(`^stuck: ${stepName} failing, \\d+ attempts: .*503 Service Unavailable`));
    const attempts = Number(/(\d+) attempts/.exec(stuck)![1]);
    expect(attempts).toBeGreaterThanOrEqual(3);

    const ended = await stack.operator.shutdown(runId, 'provider down');
    expect(ended.status).toBe('cancelled');
    expect(ended.endReason).toBe('provider down');
    expect(ended.stuck).toBeNull();
    expect(ended.units.created + ended.units.launched + ended.units.assigned).toBe(0);
  });
});
