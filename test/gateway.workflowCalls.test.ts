/**
 * The gateway's calls into Temporal when it shuts down (gateway/workflowCalls.ts): a registration
 * still waiting on its run is cancelled, and the connection then closes under nothing, so no retry
 * of the Temporal client fires on a closed channel ("Channel has been shut down", which ended the
 * gateway's process, and the bench's, when they closed under load).
 */
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNAL_RETRY, TemporalUnavailableError, WorkflowCalls, WorkflowGoneError } from '../gateway/workflowCalls.ts';
import { agentReturnedSignal, taskRunWorkflowId } from '../workflows/definitions.ts';
import { startTestTemporal } from './support/temporal.ts';

describe('gateway calls into Temporal, stopped', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await startTestTemporal();
  }, 120_000);
  afterAll(async () => {
    await env?.teardown();
  });

  it('a registration waiting on its run is cancelled by stop(), and new calls are refused', async () => {
    const runId = `r-stop-${Date.now()}`;
    // No worker polls this queue: the update waits for a workflow task that never runs.
    await env.client.workflow.start('TaskRunWorkflow', { taskQueue: 'nobody-polls', workflowId: taskRunWorkflowId(runId), args: [{}] });
    const connection = await Connection.connect({ address: env.address });
    const calls = new WorkflowCalls(new Client({ connection }));
    const waiting = calls.requestUnit(runId, { provider: 'mock', providerWorkerId: 'late', registrationKey: 'k-late' });
    const outcome = waiting.then(
      () => 'answered',
      (err: unknown) => err,
    );
    // Still waiting after a while: the run never takes the update.
    expect(await Promise.race([outcome, new Promise((resolve) => setTimeout(() => resolve('waiting'), 2_000))])).toBe('waiting');
    calls.stop();
    const err = await outcome;
    expect(err).toBeInstanceOf(TemporalUnavailableError);
    expect((err as Error).message).toContain('shutting down');
    await expect(calls.requestUnit(runId, { provider: 'mock', providerWorkerId: 'later', registrationKey: 'k-later' })).rejects.toThrow(
      TemporalUnavailableError,
    );
    await connection.close();
    // Longer than the client's longest retry delay (5 s and jitter): a retry left behind would throw now and fail the file.
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    await env.client.workflow.getHandle(taskRunWorkflowId(runId)).terminate('test done');
  }, 60_000);

  it('a signal to an assignment workflow that never started is refused as "retry" after the signal budget, never as an ended assignment', async () => {
    const calls = new WorkflowCalls(env.client);
    const started = Date.now();
    const err = await calls.signalAssignment(`never-${started}`, agentReturnedSignal, { agentId: 'ag-never' }).catch((e: unknown) => e);
    // Its start may still be on its way (a busy run's starts have waited minutes): the page sends it again.
    expect(err).toBeInstanceOf(TemporalUnavailableError);
    expect(err).not.toBeInstanceOf(WorkflowGoneError);
    expect((err as Error).message).toContain('had not started within');
    expect(Date.now() - started).toBeGreaterThanOrEqual(SIGNAL_RETRY.budgetMs - SIGNAL_RETRY.maxDelayMs * 2);
  }, 90_000);
});
