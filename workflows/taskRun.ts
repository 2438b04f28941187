/**
 * TaskRunWorkflow (`taskrun-<runId>`): one launch of a task, from validated config to its end.
 *
 * It launches units while keeping at most `max_num_concurrent_units` launched-or-assigned, is the
 * one place that hands units to workers (the `requestUnit` update), hands each assigned agent to its
 * assignment's workflow, watches lifetime and patience, and expires what is left when it ends.
 * Decisions only: every side effect is an activity (see ../activities/taskRunActivities.ts).
 */
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  TemporalFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { type TaskRunStatus, isFinalTaskRunStatus } from '../model/status.ts';
import {
  aggregationActivities,
  bulkRunActivities,
  createAssignments,
  providerPollingActivities,
  qualificationActivities,
  reviewActivities,
  runActivities,
} from './activityProxies.ts';
import { AssignmentWorkflow, type AssignmentInput } from './assignment.ts';
import {
  type RunLimits,
  type RunLimitsChange,
  type RunStatusView,
  type UnitRequest,
  type UnitRequestResult,
  OnboardingSubmitSchema,
  RunLimitsChangeSchema,
  ShutdownRequestSchema,
  UnitCompletedSchema,
  UnitReleasedSchema,
  UnitRequestSchema,
  UnitsAddedSchema,
  agentJoinedSignal,
  agentReturnedSignal,
  assignmentWorkflowId,
  changeRunLimitsUpdate,
  expireAssignmentSignal,
  requestUnitUpdate,
  runIdOfWorkflowId,
  runStatusQuery,
  shutdownRunSignal,
  submitOnboardingUpdate,
  unitCompletedSignal,
  unitReleasedSignal,
  unitsAddedSignal,
} from './definitions.ts';
import { type RunPlan, activeUnits, emptyUnitCounts, moveCount, unfinishedUnits, unitsToLaunch, unitsWithinBudget } from './runPlan.ts';
import { RUN_ID, RUN_STATUS, TASK_NAME } from './searchAttributes.ts';

/** Units launched per activity call: bounds one activity's work and one history event's size. */
const LAUNCH_BATCH = 500;
/** Registrations handled per activity call when workers arrive together. */
const ASSIGN_BATCH = 50;
/**
 * Patches (docs/design.md §6): a shutdown cancels the step the run is waiting on (a step that keeps
 * failing used to hold shutdown for ever); a step that cannot succeed ends the run `failed`, on
 * record, and refuses the workers waiting for a unit with a sentence instead of leaving them waiting.
 */
const SHUTDOWN_CANCELS_STEPS = 'shutdown-cancels-steps';
const UNHEALABLE_STEP_FAILS_RUN = 'unhealable-step-fails-run';

/** What a worker is told when the run cannot hand out units any more (no internals: those go to the operator). */
const UNAVAILABLE_DETAIL = 'This task is unavailable: its setup has a problem the researcher must fix. Please return it; you lose nothing.';

/** Continue-as-new well before Temporal's limits (50k events, 2,000 updates per run). */
const DEFAULT_HISTORY_LIMIT = 8_000;
const DEFAULT_UPDATE_LIMIT = 1_000;

export interface RunState {
  runId: string;
  plan: RunPlan;
  limits: RunLimits;
  status: TaskRunStatus;
  endReason: string | null;
  counts: ReturnType<typeof emptyUnitCounts>;
  totalUnits: number;
  startedAtMs: number;
  lastSubmissionAtMs: number | null;
  nextLaunchBatch: number;
  /** Assignment id -> units of it not yet submitted; these assignments have a workflow open. */
  openAssignments: Record<string, number>;
  continuedAsNewTimes: number;
  /** Lower the continue-as-new thresholds (tests exercise it with small values). */
  historyLimit: number;
  updateLimit: number;
  /** Shutdown requested before a continue-as-new, carried over so it is not lost. */
  pendingShutdown: string | null;
  /** Set once `max_spend` leaves no room for another unit: the run launches nothing more until it is raised. */
  budgetSpent?: boolean;
}

export interface TaskRunOutcome {
  runId: string;
  status: TaskRunStatus;
  endReason: string | null;
  units: RunState['counts'];
}

interface PendingRequest {
  request: UnitRequest;
  resolve: (result: UnitRequestResult) => void;
}

export interface TaskRunOptions {
  /** Continue-as-new past this many history events (default 8,000). */
  historyLimit?: number;
  /** Continue-as-new past this many updates handled by one run (default 1,000). */
  updateLimit?: number;
  /** Set only by continue-as-new: the state of the previous run of this workflow. */
  continued?: RunState;
}

/**
 * @param config the task-run config (docs/design.md §2), exactly as a user wrote it; validated by the first activity.
 * A plain Temporal client starts a run with just this argument.
 */
export async function TaskRunWorkflow(config: unknown, options: TaskRunOptions = {}): Promise<TaskRunOutcome> {
  const runId = runIdOfWorkflowId(workflowInfo().workflowId);
  const continued = options.continued;
  let state: RunState | undefined = continued;
  let updatesHandled = 0;
  let wake = false;
  let draining = false;
  const pending: PendingRequest[] = [];
  let assigning = false;
  let shutdownReason: string | null = continued?.pendingShutdown ?? null;
  let continuing = false;
  /** A step failed for good (non-retryable): the run ends `failed` with it. */
  let unhealable: TemporalFailure | null = null;
  const cancelStepsOnShutdown = patched(SHUTDOWN_CANCELS_STEPS);
  /** The scope of the step the main loop waits on, cancelled by a shutdown. */
  let currentStep: CancellationScope | null = null;

  /**
   * Runs one step so that a shutdown can cancel it (an activity retrying for ever). Not async when
   * unpatched: an extra await would reorder commands against the recorded histories.
   */
  function step<T>(fn: () => Promise<T>): Promise<T> {
    if (!cancelStepsOnShutdown) return fn();
    const scope = new CancellationScope();
    currentStep = scope;
    return scope.run(fn).finally(() => {
      if (currentStep === scope) currentStep = null;
    });
  }

  const poke = (): void => {
    wake = true;
  };

  // Handlers first: a worker may register the moment the run is started.
  setHandler(
    requestUnitUpdate,
    async (request) => {
      updatesHandled += 1;
      await condition(() => state !== undefined && state.status !== 'launching');
      if (!isOpenForWork()) return refusedNotRunning();
      return new Promise<UnitRequestResult>((resolve) => {
        pending.push({ request, resolve });
        poke();
      });
    },
    {
      validator: (request) => {
        UnitRequestSchema.parse(request);
        // Refused, not lost: the gateway retries and reaches the continued run.
        if (continuing) throw new Error('run is continuing as new; retry the request');
      },
    },
  );

  // Onboarding answers (docs/design.md §3): decided by the blueprint's validator; a pass goes on to a unit at once.
  setHandler(
    submitOnboardingUpdate,
    async (submission) => {
      updatesHandled += 1;
      await condition(() => state !== undefined && state.status !== 'launching');
      const verdict = await qualificationActivities.decideOnboarding({ runId, ...submission });
      if (!verdict.passed) {
        return {
          outcome: 'refused',
          reason: 'not_qualified',
          detail: "you did not pass this task's onboarding",
        } satisfies UnitRequestResult;
      }
      if (!isOpenForWork()) return refusedNotRunning();
      const { provider, providerWorkerId, registrationKey } = submission;
      return new Promise<UnitRequestResult>((resolve) => {
        pending.push({ request: { provider, providerWorkerId, registrationKey }, resolve });
        poke();
      });
    },
    {
      validator: (submission) => {
        OnboardingSubmitSchema.parse(submission);
        if (continuing) throw new Error('run is continuing as new; retry the request');
      },
    },
  );

  setHandler(
    changeRunLimitsUpdate,
    async (change) => {
      updatesHandled += 1;
      await condition(() => state !== undefined);
      const s = state!;
      const parsed = RunLimitsChangeSchema.parse(change);
      // Checked again here: the validator may have run before the run's plan was known.
      const refusal = overlapChangeRefusal(parsed);
      if (refusal) throw ApplicationFailure.create({ message: refusal, type: 'InvalidLimitChange', nonRetryable: true });
      const { 'overlap.max': overlapMax, 'overlap.confidence': overlapConfidence, ...limits } = parsed;
      if (limits.max_spend !== undefined) {
        // Bonuses and gold units read the budget from the database: it changes there first.
        await runActivities.recordMaxSpend({ runId, maxSpend: limits.max_spend });
        // A raised budget may pay for more units: the budget stop is reconsidered.
        s.budgetSpent = false;
      }
      s.limits = { ...s.limits, ...limits };
      if (s.plan.overlap && (overlapMax !== undefined || overlapConfidence !== undefined)) {
        // Read by each item's aggregation from the run's row (the assignment workflows decide extra units).
        const live = { ...(overlapMax !== undefined ? { max: overlapMax } : {}), ...(overlapConfidence !== undefined ? { confidence: overlapConfidence } : {}) };
        await aggregationActivities.recordLiveOverlap({ runId, change: live });
        s.plan.overlap = { ...s.plan.overlap, ...live };
      }
      log.info('run limits changed', { runId, change });
      poke();
      return s.limits;
    },
    {
      validator: (change) => {
        const parsed = RunLimitsChangeSchema.parse(change);
        if (state && isFinalTaskRunStatus(state.status)) throw new Error(`run ${runId} has ended (${state.status}); nothing to change`);
        const refusal = overlapChangeRefusal(parsed);
        if (refusal) throw new Error(refusal);
      },
    },
  );

  /** overlap.max / overlap.confidence: only for an overlap run, and max never below its min (null: allowed, or not yet known). */
  function overlapChangeRefusal(change: RunLimitsChange): string | null {
    const max = change['overlap.max'];
    if (!state || (max === undefined && change['overlap.confidence'] === undefined)) return null;
    const overlap = state.plan.overlap;
    if (!overlap) return `run ${runId} has no overlap; overlap.max and overlap.confidence apply to overlap runs only`;
    if (max !== undefined && max < overlap.min) return `overlap.max: ${max} is not allowed: must be >= overlap.min (${overlap.min})`;
    if (change['overlap.confidence'] !== undefined && overlap.confidence === null) {
      return 'overlap.confidence: this run has fixed overlap (no confidence in its config); launch with overlap.confidence for dynamic overlap';
    }
    return null;
  }

  setHandler(unitsAddedSignal, (event) => {
    const parsed = UnitsAddedSchema.safeParse(event);
    if (!parsed.success || !state) return;
    // Before the unitCompleted of the same submission (sent after it): the run never ends with these units still to do.
    state.counts.created += parsed.data.count;
    state.totalUnits += parsed.data.count;
    state.openAssignments[parsed.data.assignmentId] = (state.openAssignments[parsed.data.assignmentId] ?? 0) + parsed.data.count;
    poke();
  });

  setHandler(shutdownRunSignal, (request) => {
    const parsed = ShutdownRequestSchema.safeParse(request ?? {});
    shutdownReason ??= parsed.success ? parsed.data.reason : 'operator';
    currentStep?.cancel();
    poke();
  });

  setHandler(unitCompletedSignal, (event) => {
    const parsed = UnitCompletedSchema.safeParse(event);
    if (!parsed.success || !state) return;
    moveCount(state.counts, 'assigned', 'completed');
    state.lastSubmissionAtMs = Date.now();
    const left = (state.openAssignments[parsed.data.assignmentId] ?? 1) - 1;
    if (left <= 0) delete state.openAssignments[parsed.data.assignmentId];
    else state.openAssignments[parsed.data.assignmentId] = left;
    poke();
  });

  setHandler(unitReleasedSignal, (event) => {
    const parsed = UnitReleasedSchema.safeParse(event);
    if (!parsed.success || !state) return;
    moveCount(state.counts, 'assigned', parsed.data.unitStatus ?? 'launched');
    poke();
  });

  setHandler(runStatusQuery, (): RunStatusView => {
    const s = state;
    return {
      runId,
      taskName: s?.plan.taskName ?? '',
      status: s?.status ?? 'launching',
      endReason: s?.endReason ?? null,
      failureReason: null,
      units: s?.counts ?? emptyUnitCounts(),
      totalUnits: s?.totalUnits ?? 0,
      limits: s?.limits ?? {
        max_num_concurrent_units: 0,
        allowed_concurrent: 0,
        maximum_units_per_worker: 0,
        task_reward: 0,
        task_lifetime_seconds: 0,
      },
      startedAt: new Date(s?.startedAtMs ?? Date.now()).toISOString(),
      lastSubmissionAt: s?.lastSubmissionAtMs ? new Date(s.lastSubmissionAtMs).toISOString() : null,
      openAssignments: s ? Object.keys(s.openAssignments).length : 0,
      historyLength: workflowInfo().historyLength,
      continuedAsNewTimes: s?.continuedAsNewTimes ?? 0,
    };
  });

  function isOpenForWork(): boolean {
    return !!state && state.status === 'running' && !draining && shutdownReason === null && unhealable === null;
  }
  function refusedNotRunning(): UnitRequestResult {
    if (unhealable) return { outcome: 'refused', reason: 'run_not_running', detail: UNAVAILABLE_DETAIL };
    const status = state?.status ?? 'launching';
    return { outcome: 'refused', reason: 'run_not_running', detail: `run ${runId} is not taking workers (status: ${status})` };
  }

  if (!state) {
    try {
      state = await launch(runId, config, options, step);
    } catch (err) {
      // Shut down while a launch step kept failing: nothing was handed out; what was made expires.
      if (!(isCancellation(err) && shutdownReason !== null)) throw err;
      const reason = shutdownReason;
      await bulkRunActivities.expireUnits({ runId, scope: 'all', reason });
      upsertSearchAttributes([{ key: RUN_STATUS, value: 'cancelled' }]);
      await runActivities.recordRunStatus({ runId, status: 'cancelled', endReason: reason });
      log.info('task run cancelled while launching', { runId, reason });
      return { runId, status: 'cancelled', endReason: reason, units: emptyUnitCounts() };
    }
  }
  const s: RunState = state;
  upsertSearchAttributes([
    { key: TASK_NAME, value: s.plan.taskName },
    { key: RUN_ID, value: runId },
    { key: RUN_STATUS, value: s.status },
  ]);

  /** Agents this run of the workflow handed to their assignment (a continue-as-new starts a new set: the agents it finds are not new). */
  const handedOver = new Set<string>();

  // The assignment desk: registrations queue up and are decided in batches, one batch at a time.
  const desk = (async () => {
    for (;;) {
      await condition(() => pending.length > 0 || isFinalTaskRunStatus(s.status));
      if (pending.length === 0) return;
      const batch = pending.splice(0, ASSIGN_BATCH);
      if (!isOpenForWork()) {
        for (const p of batch) p.resolve(refusedNotRunning());
        continue;
      }
      assigning = true;
      try {
        // A regular activity: a local one broke replay of its own runs (a timer and the child start came
        // in another order on replay). A retry after a crash finds the agents it made by their derived
        // ids, reported new to this run again; the run hands each over once.
        let results: UnitRequestResult[];
        try {
          results = await runActivities.assignUnitsToWorkers({ runId, limits: s.limits, requests: batch.map((p) => p.request) });
        } catch (err) {
          // Only a non-retryable failure gets here (a broken gold file, say): the workers are told, the run fails.
          if (!(err instanceof TemporalFailure) || !patched(UNHEALABLE_STEP_FAILS_RUN)) throw err;
          unhealable ??= err;
          for (const p of [...batch, ...pending.splice(0)]) p.resolve(refusedNotRunning());
          poke();
          continue;
        }
        // The assignment workflow knows its agent before the worker hears of it.
        await Promise.all(
          batch.map(async (p, i) => {
            const result = results[i]!;
            // An agent this run made is new until handed over once (a retried register may find it again,
            // and is then answered as a resume: `newlyAssigned: false`).
            if (result.outcome === 'assigned' && result.newlyAssigned && handedOver.has(result.agentId)) {
              p.resolve({ ...result, newlyAssigned: false });
              return;
            }
            if (result.outcome === 'assigned' && result.newlyAssigned) {
              handedOver.add(result.agentId);
              if (isQualifying(result)) {
                // Made for this worker just now: a unit of the run that was not counted before.
                s.counts.assigned += 1;
                s.totalUnits += 1;
              } else {
                moveCount(s.counts, 'launched', 'assigned');
              }
              await handAgentToAssignment(result);
            }
            p.resolve(result);
          }),
        );
      } finally {
        assigning = false;
      }
    }
  })();

  // Only runs whose provider has something to poll (their plan says how often) start this loop, so no
  // other run's history changes. Not awaited at the end: a poll in flight then changes nothing.
  if (s.plan.leaversPollSeconds) void pollProviderLeavers(s.plan.leaversPollSeconds);

  /**
   * docs/design.md §5: while units are held, ask the provider every `seconds` who left one there
   * (returned, timed out); each such agent is signalled to its assignment, which frees the unit.
   * The fallback for the provider's notifications (webhooks), which may never arrive.
   */
  async function pollProviderLeavers(seconds: number): Promise<void> {
    const done = (): boolean => isFinalTaskRunStatus(s.status) || continuing;
    for (;;) {
      await condition(done, seconds * 1000);
      if (done()) return;
      if (Object.keys(s.openAssignments).length === 0) continue;
      let leaving: Awaited<ReturnType<typeof providerPollingActivities.findProviderLeavers>>;
      try {
        leaving = await providerPollingActivities.findProviderLeavers({ runId });
      } catch (err) {
        // The provider could not be asked now (its API down, the token refused): the next poll asks again.
        log.warn('polling the provider for workers who left failed', { runId, error: String(err) });
        continue;
      }
      for (const agent of leaving) {
        await getExternalWorkflowHandle(assignmentWorkflowId(agent.assignmentId))
          .signal(agentReturnedSignal, { agentId: agent.agentId, status: agent.status })
          .catch((err: unknown) => log.warn('assignment already closed', { assignmentId: agent.assignmentId, error: String(err) }));
      }
    }
  }

  /** Screening and gold units: one unit per assignment, made for one worker. */
  function isQualifying(result: Extract<UnitRequestResult, { outcome: 'assigned' }>): boolean {
    return result.unitKind !== undefined && result.unitKind !== 'normal';
  }

  /** Assignment workflows being started right now, by assignment id. */
  const childStarts = new Map<string, Promise<void>>();

  async function handAgentToAssignment(result: Extract<UnitRequestResult, { outcome: 'assigned' }>): Promise<void> {
    const agent = { agentId: result.agentId, unitId: result.unitId, workerId: result.workerId };
    const workflowId = assignmentWorkflowId(result.assignmentId);
    const unitsPerAssignment = isQualifying(result) ? 1 : s.plan.unitsPerAssignment;
    const wasOpen = result.assignmentId in s.openAssignments;
    if (!wasOpen) s.openAssignments[result.assignmentId] = unitsPerAssignment;
    // A partner's hand-off in the same batch may be starting this assignment's workflow right now.
    const starting = childStarts.get(result.assignmentId);
    if (starting) await starting;
    if (wasOpen && (await signalAssignment(workflowId, agent))) return;
    const input: AssignmentInput = {
      runId,
      assignmentId: result.assignmentId,
      unitsPerAssignment,
      assignmentDurationSeconds: s.plan.assignmentDurationSeconds,
      reconnectWindowSeconds: s.plan.reconnectWindowSeconds,
      autoApproveAfterSeconds: s.plan.autoApproveAfterSeconds,
      firstAgent: agent,
      // Only overlap runs carry it, so the start command of every other run is unchanged.
      ...(s.plan.overlap && !isQualifying(result) ? { independent: true } : {}),
    };
    // ABANDON: the assignment outlives this run of the TaskRun workflow across continue-as-new.
    const start = startChild(AssignmentWorkflow, { workflowId, args: [input], parentClosePolicy: ParentClosePolicy.ABANDON });
    childStarts.set(
      result.assignmentId,
      start.then(
        () => undefined,
        () => undefined,
      ),
    );
    try {
      await start;
    } catch (err) {
      if (!(err instanceof TemporalFailure && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
      await signalAssignment(workflowId, agent);
    } finally {
      childStarts.delete(result.assignmentId);
    }
  }

  async function signalAssignment(workflowId: string, agent: { agentId: string; unitId: string; workerId: string }): Promise<boolean> {
    try {
      await getExternalWorkflowHandle(workflowId).signal(agentJoinedSignal, agent);
      return true;
    } catch (err) {
      log.warn('assignment workflow not reachable; starting it', { workflowId, error: String(err) });
      return false;
    }
  }

  async function setStatus(status: TaskRunStatus, endReason: string | null = null): Promise<void> {
    s.status = status;
    s.endReason = endReason;
    upsertSearchAttributes([{ key: RUN_STATUS, value: status }]);
    await runActivities.recordRunStatus({ runId, status, endReason });
  }

  async function expireAndTell(scope: 'unassigned' | 'all', reason: string): Promise<void> {
    const expired = await bulkRunActivities.expireUnits({ runId, scope, reason });
    for (const [from, n] of Object.entries(expired)) moveCount(s.counts, from as 'created', 'expired', n);
    if (scope === 'all') {
      const open = Object.keys(s.openAssignments);
      s.openAssignments = {};
      await Promise.all(
        open.map((assignmentId) =>
          getExternalWorkflowHandle(assignmentWorkflowId(assignmentId))
            .signal(expireAssignmentSignal, { reason })
            .catch((err: unknown) => log.warn('assignment already closed', { assignmentId, error: String(err) })),
        ),
      );
    }
  }

  const lifetimeEndsAt = (): number => s.startedAtMs + s.limits.task_lifetime_seconds * 1000;
  const patienceEndsAt = (): number => (s.lastSubmissionAtMs ?? s.startedAtMs) + s.plan.noSubmissionPatienceSeconds * 1000;

  try {
    await runUntilEnd();
  } catch (err) {
    // A side effect that cannot succeed (not a bug in this code, which retries the task): the run fails, on record.
    if (err instanceof TemporalFailure) {
      const reason = failureMessage(err);
      s.status = 'failed';
      upsertSearchAttributes([{ key: RUN_STATUS, value: 'failed' }]);
      await runActivities.recordRunStatus({ runId, status: 'failed', endReason: 'failed', failureReason: reason });
    }
    throw err;
  }
  await desk;
  await condition(allHandlersFinished);
  return { runId, status: s.status, endReason: s.endReason, units: s.counts };

  async function runUntilEnd(): Promise<void> {
    for (;;) {
      wake = false;
      if (unhealable) throw unhealable;
      if (shutdownReason !== null) {
        await endRun('cancelled', shutdownReason);
        break;
      }
      if (Date.now() >= patienceEndsAt() && unfinishedUnits(s.counts) > 0) {
        await endRun('cancelled', 'patience');
        break;
      }
      if (!draining && Date.now() >= lifetimeEndsAt()) {
        draining = true;
        await setStatus('draining', 'lifetime');
      }
      if (draining && s.counts.created + s.counts.launched > 0) {
        // Past its lifetime a run launches nothing; what no one holds expires, held units may finish.
        await expireAndTell('unassigned', 'lifetime');
      }
      if (unfinishedUnits(s.counts) === 0) {
        await endRun('completed', draining ? 'lifetime' : 'all units done');
        break;
      }
      let toLaunch = draining ? 0 : unitsToLaunch(s.counts, s.limits.max_num_concurrent_units, LAUNCH_BATCH);
      if (toLaunch > 0 && maxSpend() != null) {
        const wanted = toLaunch;
        const budgeted = cancelStepsOnShutdown ? await cancelledByShutdown(() => limitToBudget(wanted)) : await limitToBudget(wanted);
        if (budgeted === null) continue;
        toLaunch = budgeted;
      }
      if (toLaunch > 0) {
        const request = { runId, batch: s.nextLaunchBatch, count: toLaunch, reward: s.limits.task_reward };
        const outcome = cancelStepsOnShutdown
          ? await cancelledByShutdown(() => bulkRunActivities.launchUnits(request))
          : await bulkRunActivities.launchUnits(request);
        // Cancelled by a shutdown: what the batch launched is expired with the rest by endRun.
        if (outcome === null) continue;
        s.nextLaunchBatch += 1;
        moveCount(s.counts, 'created', 'launched', outcome.launched);
        continue;
      }
      if (s.budgetSpent && activeUnits(s.counts) === 0) {
        // Nothing in flight and no money for more: the units left can never be done.
        await endRun('completed', 'max_spend');
        break;
      }
      if (shouldContinueAsNew()) {
        await continueAsNewSafely();
      }
      const nextDeadline = Math.min(patienceEndsAt(), draining ? Number.POSITIVE_INFINITY : lifetimeEndsAt());
      await condition(() => wake, Math.max(1, nextDeadline - Date.now()));
    }
  }

  /** A step of the main loop; null when a shutdown cancelled it (the loop then ends the run). */
  async function cancelledByShutdown<T>(fn: () => Promise<T>): Promise<T | null> {
    try {
      return await step(fn);
    } catch (err) {
      if (isCancellation(err) && shutdownReason !== null) return null;
      throw err;
    }
  }

  /** The run's budget: as changed live (`hitloop set`), else as launched. */
  function maxSpend(): number | null | undefined {
    return s.limits.max_spend ?? s.plan.maxSpend;
  }

  /** At most as many of `wanted` units as the budget still pays for (docs/design.md §2 `max_spend`). */
  async function limitToBudget(wanted: number): Promise<number> {
    if (s.budgetSpent) return 0;
    const spend = await reviewActivities.runSpend({ runId });
    const fits = unitsWithinBudget(maxSpend(), spend, s.limits.task_reward);
    if (fits < wanted) {
      // Until `max_spend` is raised: a rejection could lower the spend later, but the run does not wait on reviews.
      s.budgetSpent = true;
      log.info('budget reached: launching stops', { runId, spend, maxSpend: maxSpend(), launching: fits });
    }
    return Math.min(wanted, fits);
  }

  async function endRun(status: 'completed' | 'cancelled', reason: string): Promise<void> {
    draining = true;
    // Wait for the registration in flight: a unit is never handed out while it is being expired.
    await condition(() => !assigning);
    if (unfinishedUnits(s.counts) > 0) await expireAndTell('all', reason);
    await setStatus(status, reason);
    log.info('task run ended', { runId, status, reason, units: s.counts });
  }

  function shouldContinueAsNew(): boolean {
    return workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > s.historyLimit || updatesHandled > s.updateLimit;
  }

  async function continueAsNewSafely(): Promise<never> {
    continuing = true;
    // Updates already accepted finish here; new ones are refused by the validator and retried by the gateway.
    await condition(() => pending.length === 0 && !assigning && allHandlersFinished());
    s.continuedAsNewTimes += 1;
    s.pendingShutdown = shutdownReason;
    log.info('continuing as new', { runId, historyLength: workflowInfo().historyLength, times: s.continuedAsNewTimes });
    return continueAsNew<typeof TaskRunWorkflow>(null, { continued: s });
  }
}

/**
 * First steps of a fresh run: validate, record, create assignments, set up the provider. `step` runs
 * the steps a shutdown may cancel; one that fails for good fails the run on record.
 */
async function launch(
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
      upsertSearchAttributes([{ key: RUN_STATUS, value: 'failed' }]);
      await runActivities.recordRunStatus({ runId, status: 'failed', endReason: 'failed', failureReason: failureMessage(err) });
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

/** The innermost message of an activity's failure: the one that says what to fix. */
function failureMessage(err: TemporalFailure): string {
  return err.cause?.message ?? err.message;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}
