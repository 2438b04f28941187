/**
 * The state of one TaskRun workflow and its decisions (in the shape of Temporal's
 * safe-message-handlers sample): the message handlers' bodies, the main loop that launches units and
 * ends the run, and what they share. workflows/taskRun.ts wires the handlers to it; the assignment
 * desk (assignmentDesk.ts) decides registrations, providerLeavers.ts polls the provider.
 */
import {
  ApplicationFailure,
  CancellationScope,
  type TemporalFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { type TaskRunStatus, isFinalTaskRunStatus } from '../model/status.ts';
import { aggregationActivities, bulkRunActivities, providerClosingActivities, qualificationActivities, reviewActivities, runActivities } from './activityProxies.ts';
import { AssignmentDesk } from './assignmentDesk.ts';
import {
  type OnboardingSubmit,
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
  expireAssignmentSignal,
  assignmentWorkflowId,
} from './definitions.ts';
import { CLOSE_RUN_AT_PROVIDER, SHUTDOWN_CANCELS_STEPS } from './patches.ts';
import { type RunPlan, activeUnits, emptyUnitCounts, moveCount, unfinishedUnits, unitsToLaunch, unitsWithinBudget } from './runPlan.ts';
import { RUN_STATUS } from './searchAttributes.ts';
import type { TaskRunWorkflow } from './taskRun.ts';

/** Units launched per activity call: bounds one activity's work and one history event's size. */
const LAUNCH_BATCH = 500;

/** What a worker is told when the run cannot hand out units any more (no internals: those go to the operator). */
const UNAVAILABLE_DETAIL = 'This task is unavailable: its setup has a problem the researcher must fix. Please return it; you lose nothing.';

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

export interface TaskRunOptions {
  /** Continue-as-new past this many history events (default 8,000). */
  historyLimit?: number;
  /** Continue-as-new past this many updates handled by one run (default 1,000). */
  updateLimit?: number;
  /** Set only by continue-as-new: the state of the previous run of this workflow. */
  continued?: RunState;
}

export class TaskRun {
  readonly runId: string;
  /** Undefined until the launch steps are done (a continued run starts with its predecessor's). */
  state: RunState | undefined;
  readonly desk: AssignmentDesk;
  updatesHandled = 0;
  /** Something changed that the main loop should look at. */
  wake = false;
  draining = false;
  shutdownReason: string | null;
  continuing = false;
  /** A step failed for good (non-retryable): the run ends `failed` with it. */
  unhealable: TemporalFailure | null = null;
  readonly cancelStepsOnShutdown: boolean;
  /** The scope of the step the main loop waits on, cancelled by a shutdown. */
  currentStep: CancellationScope | null = null;

  constructor(runId: string, continued: RunState | undefined) {
    this.runId = runId;
    this.state = continued;
    this.shutdownReason = continued?.pendingShutdown ?? null;
    this.cancelStepsOnShutdown = patched(SHUTDOWN_CANCELS_STEPS);
    this.desk = new AssignmentDesk(this);
  }

  /** The state once launched (the main loop, the desk and the poll loop only run after the launch). */
  get s(): RunState {
    if (!this.state) throw new Error(`run ${this.runId} has no state before its launch steps are done`);
    return this.state;
  }

  poke(): void {
    this.wake = true;
  }

  /**
   * Runs one step so that a shutdown can cancel it (an activity retrying for ever). Not async when
   * unpatched: an extra await would reorder commands against the recorded histories.
   */
  step<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.cancelStepsOnShutdown) return fn();
    const scope = new CancellationScope();
    this.currentStep = scope;
    return scope.run(fn).finally(() => {
      if (this.currentStep === scope) this.currentStep = null;
    });
  }

  isOpenForWork(): boolean {
    return !!this.state && this.state.status === 'running' && !this.draining && this.shutdownReason === null && this.unhealable === null;
  }

  refusedNotRunning(): UnitRequestResult {
    if (this.unhealable) return { outcome: 'refused', reason: 'run_not_running', detail: UNAVAILABLE_DETAIL };
    const status = this.state?.status ?? 'launching';
    return { outcome: 'refused', reason: 'run_not_running', detail: `run ${this.runId} is not taking workers (status: ${status})` };
  }

  // ---- message handlers -------------------------------------------------------------------------

  validateUnitRequest(request: UnitRequest): void {
    UnitRequestSchema.parse(request);
    this.#refuseWhileContinuing();
  }

  /** Refused, not lost: the gateway retries and reaches the continued run. */
  #refuseWhileContinuing(): void {
    if (this.continuing) throw new Error('run is continuing as new; retry the request');
  }

  async requestUnit(request: UnitRequest): Promise<UnitRequestResult> {
    this.updatesHandled += 1;
    await condition(() => this.state !== undefined && this.state.status !== 'launching');
    if (!this.isOpenForWork()) return this.refusedNotRunning();
    return this.desk.enqueue(request);
  }

  validateOnboarding(submission: OnboardingSubmit): void {
    OnboardingSubmitSchema.parse(submission);
    this.#refuseWhileContinuing();
  }

  /** Onboarding answers (docs/design.md §3): decided by the blueprint's validator; a pass goes on to a unit at once. */
  async submitOnboarding(submission: OnboardingSubmit): Promise<UnitRequestResult> {
    this.updatesHandled += 1;
    await condition(() => this.state !== undefined && this.state.status !== 'launching');
    const verdict = await qualificationActivities.decideOnboarding({ runId: this.runId, ...submission });
    if (!verdict.passed) {
      return {
        outcome: 'refused',
        reason: 'not_qualified',
        detail: "you did not pass this task's onboarding",
      } satisfies UnitRequestResult;
    }
    if (!this.isOpenForWork()) return this.refusedNotRunning();
    const { provider, providerWorkerId, registrationKey } = submission;
    return this.desk.enqueue({ provider, providerWorkerId, registrationKey });
  }

  validateLimitsChange(change: RunLimitsChange): void {
    const parsed = RunLimitsChangeSchema.parse(change);
    if (this.state && isFinalTaskRunStatus(this.state.status)) throw new Error(`run ${this.runId} has ended (${this.state.status}); nothing to change`);
    const refusal = this.overlapChangeRefusal(parsed);
    if (refusal) throw new Error(refusal);
  }

  async changeRunLimits(change: RunLimitsChange): Promise<RunLimits> {
    this.updatesHandled += 1;
    await condition(() => this.state !== undefined);
    const s = this.s;
    const parsed = RunLimitsChangeSchema.parse(change);
    // Checked again here: the validator may have run before the run's plan was known.
    const refusal = this.overlapChangeRefusal(parsed);
    if (refusal) throw ApplicationFailure.create({ message: refusal, type: 'InvalidLimitChange', nonRetryable: true });
    const { 'overlap.max': overlapMax, 'overlap.confidence': overlapConfidence, ...limits } = parsed;
    if (limits.max_spend !== undefined) {
      // Bonuses and gold units read the budget from the database: it changes there first.
      await runActivities.recordMaxSpend({ runId: this.runId, maxSpend: limits.max_spend });
      // A raised budget may pay for more units: the budget stop is reconsidered.
      s.budgetSpent = false;
    }
    s.limits = { ...s.limits, ...limits };
    if (s.plan.overlap && (overlapMax !== undefined || overlapConfidence !== undefined)) {
      // Read by each item's aggregation from the run's row (the assignment workflows decide extra units).
      const live = { ...(overlapMax !== undefined ? { max: overlapMax } : {}), ...(overlapConfidence !== undefined ? { confidence: overlapConfidence } : {}) };
      await aggregationActivities.recordLiveOverlap({ runId: this.runId, change: live });
      s.plan.overlap = { ...s.plan.overlap, ...live };
    }
    log.info('run limits changed', { runId: this.runId, change });
    this.poke();
    return s.limits;
  }

  /** overlap.max / overlap.confidence: only for an overlap run, and max never below its min (null: allowed, or not yet known). */
  overlapChangeRefusal(change: RunLimitsChange): string | null {
    const max = change['overlap.max'];
    if (!this.state || (max === undefined && change['overlap.confidence'] === undefined)) return null;
    const overlap = this.state.plan.overlap;
    if (!overlap) return `run ${this.runId} has no overlap; overlap.max and overlap.confidence apply to overlap runs only`;
    if (max !== undefined && max < overlap.min) return `overlap.max: ${max} is not allowed: must be >= overlap.min (${overlap.min})`;
    if (change['overlap.confidence'] !== undefined && overlap.confidence === null) {
      return 'overlap.confidence: this run has fixed overlap (no confidence in its config); launch with overlap.confidence for dynamic overlap';
    }
    return null;
  }

  unitsAdded(event: unknown): void {
    const parsed = UnitsAddedSchema.safeParse(event);
    const state = this.state;
    if (!parsed.success || !state) return;
    // Before the unitCompleted of the same submission (sent after it): the run never ends with these units still to do.
    state.counts.created += parsed.data.count;
    state.totalUnits += parsed.data.count;
    state.openAssignments[parsed.data.assignmentId] = (state.openAssignments[parsed.data.assignmentId] ?? 0) + parsed.data.count;
    this.poke();
  }

  shutdown(request: unknown): void {
    const parsed = ShutdownRequestSchema.safeParse(request ?? {});
    this.shutdownReason ??= parsed.success ? parsed.data.reason : 'operator';
    this.currentStep?.cancel();
    this.poke();
  }

  unitCompleted(event: unknown): void {
    const parsed = UnitCompletedSchema.safeParse(event);
    const state = this.state;
    if (!parsed.success || !state) return;
    moveCount(state.counts, 'assigned', 'completed');
    state.lastSubmissionAtMs = Date.now();
    const left = (state.openAssignments[parsed.data.assignmentId] ?? 1) - 1;
    if (left <= 0) delete state.openAssignments[parsed.data.assignmentId];
    else state.openAssignments[parsed.data.assignmentId] = left;
    this.poke();
  }

  unitReleased(event: unknown): void {
    const parsed = UnitReleasedSchema.safeParse(event);
    const state = this.state;
    if (!parsed.success || !state) return;
    moveCount(state.counts, 'assigned', parsed.data.unitStatus ?? 'launched');
    this.poke();
  }

  statusView(): RunStatusView {
    const s = this.state;
    return {
      runId: this.runId,
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
  }

  // ---- ending while launching ---------------------------------------------------------------------

  /** Shut down while a launch step kept failing: nothing was handed out; what was made expires. */
  async cancelWhileLaunching(reason: string): Promise<TaskRunOutcome> {
    await bulkRunActivities.expireUnits({ runId: this.runId, scope: 'all', reason });
    await announceStatus(this.runId, 'cancelled', reason);
    log.info('task run cancelled while launching', { runId: this.runId, reason });
    return { runId: this.runId, status: 'cancelled', endReason: reason, units: emptyUnitCounts() };
  }

  // ---- the main loop ----------------------------------------------------------------------------

  /** Launches units within the caps and the budget, watches lifetime and patience, until the run ends. */
  async runUntilEnd(): Promise<void> {
    const s = this.s;
    for (;;) {
      this.wake = false;
      if (this.unhealable) throw this.unhealable;
      if (this.shutdownReason !== null) {
        await this.endRun('cancelled', this.shutdownReason);
        break;
      }
      if (Date.now() >= this.patienceEndsAt() && unfinishedUnits(s.counts) > 0) {
        await this.endRun('cancelled', 'patience');
        break;
      }
      if (!this.draining && Date.now() >= this.lifetimeEndsAt()) {
        this.draining = true;
        await this.setStatus('draining', 'lifetime');
      }
      if (this.draining && s.counts.created + s.counts.launched > 0) {
        // Past its lifetime a run launches nothing; what no one holds expires, held units may finish.
        await this.expireAndTell('unassigned', 'lifetime');
      }
      if (unfinishedUnits(s.counts) === 0) {
        await this.endRun('completed', this.draining ? 'lifetime' : 'all units done');
        break;
      }
      let toLaunch = this.draining ? 0 : unitsToLaunch(s.counts, s.limits.max_num_concurrent_units, LAUNCH_BATCH);
      if (toLaunch > 0 && this.maxSpend() != null) {
        const wanted = toLaunch;
        const budgeted = this.cancelStepsOnShutdown
          ? await this.cancelledByShutdown(() => this.limitToBudget(wanted))
          : await this.limitToBudget(wanted);
        if (budgeted === null) continue;
        toLaunch = budgeted;
      }
      if (toLaunch > 0) {
        const request = { runId: this.runId, batch: s.nextLaunchBatch, count: toLaunch, reward: s.limits.task_reward };
        const outcome = this.cancelStepsOnShutdown
          ? await this.cancelledByShutdown(() => bulkRunActivities.launchUnits(request))
          : await bulkRunActivities.launchUnits(request);
        // Cancelled by a shutdown: what the batch launched is expired with the rest by endRun.
        if (outcome === null) continue;
        s.nextLaunchBatch += 1;
        moveCount(s.counts, 'created', 'launched', outcome.launched);
        continue;
      }
      if (s.budgetSpent && activeUnits(s.counts) === 0) {
        // Nothing in flight and no money for more: the units left can never be done.
        await this.endRun('completed', 'max_spend');
        break;
      }
      if (this.shouldContinueAsNew()) {
        await this.continueAsNewSafely();
      }
      const nextDeadline = Math.min(this.patienceEndsAt(), this.draining ? Number.POSITIVE_INFINITY : this.lifetimeEndsAt());
      await condition(() => this.wake, Math.max(1, nextDeadline - Date.now()));
    }
  }

  /** The run failed on a side effect that cannot succeed: on record, then the failure ends the workflow. */
  async recordFailure(err: TemporalFailure): Promise<void> {
    const s = this.s;
    s.status = 'failed';
    await announceStatus(this.runId, 'failed', 'failed', failureMessage(err));
  }

  lifetimeEndsAt(): number {
    return this.s.startedAtMs + this.s.limits.task_lifetime_seconds * 1000;
  }

  patienceEndsAt(): number {
    return (this.s.lastSubmissionAtMs ?? this.s.startedAtMs) + this.s.plan.noSubmissionPatienceSeconds * 1000;
  }

  async setStatus(status: TaskRunStatus, endReason: string | null = null): Promise<void> {
    const s = this.s;
    s.status = status;
    s.endReason = endReason;
    await announceStatus(this.runId, status, endReason);
  }

  async expireAndTell(scope: 'unassigned' | 'all', reason: string): Promise<void> {
    const s = this.s;
    const expired = await bulkRunActivities.expireUnits({ runId: this.runId, scope, reason });
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

  /** A step of the main loop; null when a shutdown cancelled it (the loop then ends the run). */
  async cancelledByShutdown<T>(fn: () => Promise<T>): Promise<T | null> {
    try {
      return await this.step(fn);
    } catch (err) {
      if (isCancellation(err) && this.shutdownReason !== null) return null;
      throw err;
    }
  }

  /** The run's budget: as changed live (`hitloop set`), else as launched. */
  maxSpend(): number | null | undefined {
    return this.s.limits.max_spend ?? this.s.plan.maxSpend;
  }

  /** At most as many of `wanted` units as the budget still pays for (docs/design.md §2 `max_spend`). */
  async limitToBudget(wanted: number): Promise<number> {
    const s = this.s;
    if (s.budgetSpent) return 0;
    const spend = await reviewActivities.runSpend({ runId: this.runId });
    const fits = unitsWithinBudget(this.maxSpend(), spend, s.limits.task_reward);
    if (fits < wanted) {
      // Until `max_spend` is raised: a rejection could lower the spend later, but the run does not wait on reviews.
      s.budgetSpent = true;
      log.info('budget reached: launching stops', { runId: this.runId, spend, maxSpend: this.maxSpend(), launching: fits });
    }
    return Math.min(wanted, fits);
  }

  async endRun(status: 'completed' | 'cancelled', reason: string): Promise<void> {
    const s = this.s;
    this.draining = true;
    // Wait for the registration in flight: a unit is never handed out while it is being expired.
    await condition(() => !this.desk.busy);
    if (unfinishedUnits(s.counts) > 0) await this.expireAndTell('all', reason);
    await this.setStatus(status, reason);
    log.info('task run ended', { runId: this.runId, status, reason, units: s.counts });
  }

  shouldContinueAsNew(): boolean {
    return workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > this.s.historyLimit || this.updatesHandled > this.s.updateLimit;
  }

  async continueAsNewSafely(): Promise<never> {
    const s = this.s;
    this.continuing = true;
    // Updates already accepted finish here; new ones are refused by the validator and retried by the gateway.
    await condition(() => this.desk.pending.length === 0 && !this.desk.busy && allHandlersFinished());
    s.continuedAsNewTimes += 1;
    s.pendingShutdown = this.shutdownReason;
    log.info('continuing as new', { runId: this.runId, historyLength: workflowInfo().historyLength, times: s.continuedAsNewTimes });
    return continueAsNew<typeof TaskRunWorkflow>(null, { continued: s });
  }
}

/** The run's status on record: in its search attribute (the Temporal UI lists runs by it) and in the database. */
export async function announceStatus(runId: string, status: TaskRunStatus, endReason: string | null, failureReason?: string): Promise<void> {
  upsertSearchAttributes([{ key: RUN_STATUS, value: status }]);
  await runActivities.recordRunStatus({ runId, status, endReason, ...(failureReason !== undefined ? { failureReason } : {}) });
  if (isFinalTaskRunStatus(status) && patched(CLOSE_RUN_AT_PROVIDER)) {
    // The run's outcome is on record and stands: a provider that cannot be reached now leaves its leftovers to their lifetime.
    await providerClosingActivities
      .closeRunAtProvider({ runId })
      .catch((err: unknown) => log.warn('the provider could not withdraw what is left of the ended run', { runId, error: String(err) }));
  }
}

/** The innermost message of an activity's failure: the one that says what to fix. */
export function failureMessage(err: TemporalFailure): string {
  return err.cause?.message ?? err.message;
}
