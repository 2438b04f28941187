/**
 * TaskRunWorkflow (`taskrun-<runId>`): one launch of a task, from validated config to its end.
 *
 * It launches units while keeping at most `max_num_concurrent_units` launched-or-assigned, is the
 * one place that hands units to workers (the `requestUnit` update), hands each assigned agent to its
 * assignment's workflow, watches lifetime and patience, and expires what is left when it ends.
 * Decisions only: every side effect is an activity (see ../activities/taskRunActivities.ts).
 *
 * This file wires the messages to the run's state object (taskRunState.ts, in the shape of Temporal's
 * safe-message-handlers sample) and runs its steps in order: launch (launchRun.ts), the assignment
 * desk (assignmentDesk.ts), the provider poll (providerLeavers.ts), the main loop.
 */
import { TemporalFailure, allHandlersFinished, condition, isCancellation, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  changeRunLimitsUpdate,
  requestUnitUpdate,
  runIdOfWorkflowId,
  runStatusQuery,
  shutdownRunSignal,
  submitOnboardingUpdate,
  unitCompletedSignal,
  unitReleasedSignal,
  unitsAddedSignal,
} from './definitions.ts';
import { launchRun } from './launchRun.ts';
import { pollProviderLeavers } from './providerLeavers.ts';
import { RUN_ID, RUN_STATUS, TASK_NAME } from './searchAttributes.ts';
import { TaskRun, type TaskRunOptions, type TaskRunOutcome } from './taskRunState.ts';

export type { RunState, TaskRunOptions, TaskRunOutcome } from './taskRunState.ts';

/**
 * @param config the task-run config (docs/design.md §2), exactly as a user wrote it; validated by the first activity.
 * A plain Temporal client starts a run with just this argument.
 */
export async function TaskRunWorkflow(config: unknown, options: TaskRunOptions = {}): Promise<TaskRunOutcome> {
  const run = new TaskRun(runIdOfWorkflowId(workflowInfo().workflowId), options.continued);

  // Handlers first: a worker may register the moment the run is started. Each returns the method's
  // own promise (no async wrapper): an extra await could reorder commands against recorded histories.
  setHandler(requestUnitUpdate, (request) => run.requestUnit(request), { validator: (request) => run.validateUnitRequest(request) });
  setHandler(submitOnboardingUpdate, (submission) => run.submitOnboarding(submission), {
    validator: (submission) => run.validateOnboarding(submission),
  });
  setHandler(changeRunLimitsUpdate, (change) => run.changeRunLimits(change), { validator: (change) => run.validateLimitsChange(change) });
  setHandler(unitsAddedSignal, (event) => run.unitsAdded(event));
  setHandler(shutdownRunSignal, (request) => run.shutdown(request));
  setHandler(unitCompletedSignal, (event) => run.unitCompleted(event));
  setHandler(unitReleasedSignal, (event) => run.unitReleased(event));
  setHandler(runStatusQuery, () => run.statusView());

  if (!run.state) {
    try {
      run.state = await launchRun(run.runId, config, options, (fn) => run.step(fn));
    } catch (err) {
      if (!(isCancellation(err) && run.shutdownReason !== null)) throw err;
      return run.cancelWhileLaunching(run.shutdownReason);
    }
  }
  const s = run.s;
  upsertSearchAttributes([
    { key: TASK_NAME, value: s.plan.taskName },
    { key: RUN_ID, value: run.runId },
    { key: RUN_STATUS, value: s.status },
  ]);

  const desk = run.desk.serve();
  // Only runs whose provider has something to poll (their plan says how often) start this loop, so no
  // other run's history changes. Not awaited at the end: a poll in flight then changes nothing.
  if (s.plan.leaversPollSeconds) void pollProviderLeavers(run, s.plan.leaversPollSeconds);

  try {
    await run.runUntilEnd();
  } catch (err) {
    // A side effect that cannot succeed (not a bug in this code, which retries the task): the run fails, on record.
    if (err instanceof TemporalFailure) await run.recordFailure(err);
    throw err;
  }
  await desk;
  await condition(allHandlersFinished);
  return { runId: run.runId, status: s.status, endReason: s.endReason, units: s.counts };
}
