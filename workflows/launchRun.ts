/**
 * First steps of a fresh TaskRun: validate, record, create assignments, set up the provider. `step`
 * runs the steps a shutdown may cancel; one that fails for good fails the run on record.
 */
import { ApplicationFailure, TemporalFailure, isCancellation, patched, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { createAssignments, runActivities } from './activityProxies.ts';
import { UNHEALABLE_STEP_FAILS_RUN } from './patches.ts';
import { type RunPlan, emptyUnitCounts } from './runPlan.ts';
import { RUN_ID, RUN_STATUS } from './searchAttributes.ts';
import { type RunState, type TaskRunOptions, announceStatus, failureMessage } from './taskRunState.ts';

/** Continue-as-new well before Temporal's limits (50k events, 2,000 updates per run). */
const DEFAULT_HISTORY_LIMIT = 8_000;
const DEFAULT_UPDATE_LIMIT = 1_000;

export async function launchRun(
  runId: string,
  config: unknown,
  options: TaskRunOptions,
  step: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<RunState> {
  let plan: RunPlan;
  try {
    plan = await runActivities.validateTaskRunConfig({ runId, config });
  } catch (err) {
    upsertSearchAttributes([
      { key: RUN_ID, value: runId },
      { key: RUN_STATUS, value: 'failed' },
    ]);
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    throw ApplicationFailure.nonRetryable(`task run ${runId} refused: invalid config: ${cause}`, 'InvalidTaskRunConfig');
  }
  upsertMemo({ config: plan.summary });
  const startedAtMs = Date.now();
  await runActivities.registerTaskRun({ runId, workflowId: workflowInfo().workflowId, config });
  let units: number;
  try {
    ({ units } = await step(() => createAssignments({ runId })));
    await step(() => runActivities.setUpProviderForRun({ runId }));
  } catch (err) {
    if (err instanceof TemporalFailure && !isCancellation(err) && patched(UNHEALABLE_STEP_FAILS_RUN)) {
      await announceStatus(runId, 'failed', 'failed', failureMessage(err));
    }
    throw err;
  }
  const counts = emptyUnitCounts();
  counts.created = units;
  const state: RunState = {
    runId,
    plan,
    limits: plan.limits,
    status: 'launching',
    endReason: null,
    counts,
    totalUnits: units,
    startedAtMs,
    lastSubmissionAtMs: null,
    nextLaunchBatch: 1,
    openAssignments: {},
    continuedAsNewTimes: 0,
    historyLimit: numberOr(options.historyLimit, DEFAULT_HISTORY_LIMIT),
    updateLimit: numberOr(options.updateLimit, DEFAULT_UPDATE_LIMIT),
    pendingShutdown: null,
  };
  state.status = 'running';
  await runActivities.recordRunStatus({ runId, status: 'running', endReason: null });
  return state;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}
