/**
 * Auto-approve (docs/design.md §4) is a durable timer in the assignment workflow: a unit completed and left
 * unreviewed is approved `auto_approve_after_seconds` later, even when the worker process was
 * killed (SIGKILL) before the timer came due and started again only after it had. A unit the
 * operator reviewed in time keeps the operator's decision. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderCall, Review, Unit } from '../model/entities.ts';
import { createReviewer } from '../review/operator.ts';
import { assignmentWorkflowId } from '../workflows/definitions.ts';
import { formConfig } from './support/configs.ts';
import { completeUnit, waitForUnitStatus } from './support/completeUnits.ts';
import { eventually, startStack, type Dialect, type Stack } from './support/stack.ts';
import { startWorkerProcess, type WorkerProcess } from './support/workerProcess.ts';

const AUTO_APPROVE_SECONDS = 4;

describe.each<Dialect>(['sqlite', 'postgresql'])('auto-approve on %s', (dialect) => {
  let stack: Stack;
  let worker: WorkerProcess | undefined;
  const startWorker = async (): Promise<WorkerProcess> =>
    (worker = await startWorkerProcess({
      temporalAddress: stack.env.address,
      databaseUrl: stack.settings.databaseUrl,
      taskQueue: stack.settings.taskQueue,
    }));

  beforeAll(async () => {
    // The hitloop worker is a child process here, so that it can be killed like a crashed one.
    stack = await startStack(dialect, { worker: false });
    await startWorker();
  });
  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  it('approves unreviewed completed units after the timer, across a worker crash, and leaves reviewed ones alone', async () => {
    const { runId } = await stack.operator.launch(formConfig({ auto_approve_after_seconds: AUTO_APPROVE_SECONDS }, 3));
    const client = stack.env.client;
    const left = await completeUnit(client, stack.db, runId, 'auto-ann', { label: 'positive' });
    const reviewed = await completeUnit(client, stack.db, runId, 'auto-bob', { label: 'negative' });
    const reviewer = createReviewer({ client, db: stack.db, settings: stack.settings });
    await reviewer.review(runId, { decision: 'reject', unitIds: [reviewed.unitId] });

    // Both assignment workflows have started their timers: the crash comes after that.
    for (const unit of [left, reviewed]) {
      await eventually(async () => {
        const history = await client.workflow.getHandle(assignmentWorkflowId(unit.assignmentId)).fetchHistory();
        return history.events?.some((e) => e.timerStartedEventAttributes) ? true : undefined;
      }, `the auto-approve timer of ${unit.assignmentId}`);
    }
    const completedAt = (await stack.db.em().findOneOrFail(Unit, left.unitId)).completedAt!.getTime();
    await worker!.kill();

    // The timer comes due while no worker runs: nothing can approve the unit yet.
    const dueAt = completedAt + AUTO_APPROVE_SECONDS * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, dueAt - Date.now()) + 1500));
    expect((await stack.db.em().findOneOrFail(Unit, left.unitId)).status).toBe('completed');

    await startWorker();
    await waitForUnitStatus(stack.db, left.unitId, 'accepted');
    // The unit is stored accepted before the provider is told; the workflow ends once both are done.
    await client.workflow.getHandle(assignmentWorkflowId(left.assignmentId)).result();
    const review = await stack.db.em().findOneOrFail(Review, { unit: left.unitId });
    expect(review).toMatchObject({ decision: 'approve', requestKey: `auto-approve-${left.unitId}` });
    expect(review.note).toMatch(/approved automatically 4 s after completion/);
    expect(await stack.db.em().count(ProviderCall, { operation: 'approveWork', target: left.unitId })).toBe(1);

    // The operator's rejection stands: its assignment workflow ends without approving anything.
    await client.workflow.getHandle(assignmentWorkflowId(reviewed.assignmentId)).result();
    expect((await stack.db.em().findOneOrFail(Unit, reviewed.unitId)).status).toBe('rejected');
    expect(await stack.db.em().count(ProviderCall, { operation: 'approveWork', target: reviewed.unitId })).toBe(0);
    await stack.operator.shutdown(runId);
  });
});
