/**
 * The assignment desk of a TaskRun workflow: registrations queue up and are decided in batches, one
 * batch at a time, by the `assignUnitsToWorkers` activity (the rules live in registration/); each
 * agent the decision made is handed to its assignment's workflow before its worker hears of it.
 */
import { ParentClosePolicy, TemporalFailure, condition, getExternalWorkflowHandle, log, patched, startChild } from '@temporalio/workflow';
import { isFinalTaskRunStatus } from '../model/status.ts';
import { runActivities } from './activityProxies.ts';
import { AssignmentWorkflow, type AssignmentInput } from './assignment.ts';
import { type UnitRequest, type UnitRequestResult, agentJoinedSignal, assignmentWorkflowId } from './definitions.ts';
import { ANSWER_BEFORE_CHILD_START, UNHEALABLE_STEP_FAILS_RUN } from './patches.ts';
import { moveCount } from './runPlan.ts';
import type { TaskRun } from './taskRunState.ts';

/** Registrations handled per activity call when workers arrive together. */
const ASSIGN_BATCH = 50;

type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

interface PendingRequest {
  request: UnitRequest;
  resolve: (result: UnitRequestResult) => void;
}

/** Screening and gold units: one unit per assignment, made for one worker. */
function isQualifying(result: Assigned): boolean {
  return result.unitKind !== undefined && result.unitKind !== 'normal';
}

export class AssignmentDesk {
  readonly #run: TaskRun;
  /** Registrations waiting for the next batch. */
  readonly pending: PendingRequest[] = [];
  /** A batch is being decided or handed over: nothing may expire meanwhile. */
  assigning = false;
  /** Agents this run of the workflow handed to their assignment (a continue-as-new starts a new set: the agents it finds are not new). */
  readonly #handedOver = new Set<string>();
  /** Assignment workflows being started right now, by assignment id. */
  readonly #childStarts = new Map<string, Promise<void>>();
  /** docs/design.md §6: the answer goes out with the hand-off's command, not after its round trip. */
  readonly #answerBeforeChildStart: boolean;
  /** Hand-offs still under way after their registration was answered (answerBeforeChildStart only). */
  #handingOver = 0;

  constructor(run: TaskRun) {
    this.#run = run;
    this.#answerBeforeChildStart = patched(ANSWER_BEFORE_CHILD_START);
  }

  /** Deciding a batch or handing agents over: the run neither expires units nor continues as new meanwhile. */
  get busy(): boolean {
    return this.assigning || this.#handingOver > 0;
  }

  /** Queue a registration; the promise holds its answer. */
  enqueue(request: UnitRequest): Promise<UnitRequestResult> {
    return new Promise<UnitRequestResult>((resolve) => {
      this.pending.push({ request, resolve });
      this.#run.poke();
    });
  }

  /** Decides batches until the run has ended and no registration is left. */
  async serve(): Promise<void> {
    const run = this.#run;
    const s = run.s;
    for (;;) {
      await condition(() => this.pending.length > 0 || isFinalTaskRunStatus(s.status));
      if (this.pending.length === 0) return;
      const batch = this.pending.splice(0, ASSIGN_BATCH);
      if (!run.isOpenForWork()) {
        for (const p of batch) p.resolve(run.refusedNotRunning());
        continue;
      }
      this.assigning = true;
      try {
        // A regular activity: a local one broke replay of its own runs (a timer and the child start came
        // in another order on replay). A retry after a crash finds the agents it made by their derived
        // ids, reported new to this run again; the run hands each over once.
        let results: UnitRequestResult[];
        try {
          results = await runActivities.assignUnitsToWorkers({ runId: run.runId, limits: s.limits, requests: batch.map((p) => p.request) });
        } catch (err) {
          // Only a non-retryable failure gets here (a broken gold file, say): the workers are told, the run fails.
          if (!(err instanceof TemporalFailure) || !patched(UNHEALABLE_STEP_FAILS_RUN)) throw err;
          run.unhealable ??= err;
          for (const p of [...batch, ...this.pending.splice(0)]) p.resolve(run.refusedNotRunning());
          run.poke();
          continue;
        }
        // The assignment workflow knows its agent before the worker hears of it.
        await Promise.all(
          batch.map(async (p, i) => {
            const result = results[i]!;
            // An agent this run made is new until handed over once (a retried register may find it again,
            // and is then answered as a resume: `newlyAssigned: false`).
            if (result.outcome === 'assigned' && result.newlyAssigned && this.#handedOver.has(result.agentId)) {
              p.resolve({ ...result, newlyAssigned: false });
              return;
            }
            if (result.outcome === 'assigned' && result.newlyAssigned) {
              this.#handedOver.add(result.agentId);
              if (isQualifying(result)) {
                // Made for this worker just now: a unit of the run that was not counted before.
                s.counts.assigned += 1;
                s.totalUnits += 1;
              } else {
                moveCount(s.counts, 'launched', 'assigned');
              }
              if (this.#answerBeforeChildStart && this.#startsAssignment(result)) {
                // Not awaited: the start command is already issued, in the task that answers the worker, and
                // carries the agent (a signal the worker sends meanwhile finds it); `busy` holds the run's end
                // and continue-as-new until the start has happened.
                void this.#handOverInBackground(result);
              } else {
                await this.#handAgentToAssignment(result);
              }
            }
            p.resolve(result);
          }),
        );
      } finally {
        this.assigning = false;
      }
    }
  }

  /**
   * This agent's hand-off starts its assignment's workflow. A partner joining one already open (or
   * being started) is told by a signal, which the answer waits for: a signal the worker sent first
   * would name an agent the assignment workflow does not know yet, and be dropped.
   */
  #startsAssignment(result: Assigned): boolean {
    return !(result.assignmentId in this.#run.s.openAssignments) && !this.#childStarts.has(result.assignmentId);
  }

  async #handOverInBackground(result: Assigned): Promise<void> {
    this.#handingOver += 1;
    try {
      await this.#handAgentToAssignment(result);
    } finally {
      this.#handingOver -= 1;
    }
  }

  async #handAgentToAssignment(result: Assigned): Promise<void> {
    const s = this.#run.s;
    const agent = { agentId: result.agentId, unitId: result.unitId, workerId: result.workerId };
    const workflowId = assignmentWorkflowId(result.assignmentId);
    const unitsPerAssignment = isQualifying(result) ? 1 : s.plan.unitsPerAssignment;
    const wasOpen = result.assignmentId in s.openAssignments;
    if (!wasOpen) s.openAssignments[result.assignmentId] = unitsPerAssignment;
    // A partner's hand-off in the same batch may be starting this assignment's workflow right now.
    const starting = this.#childStarts.get(result.assignmentId);
    if (starting) await starting;
    if (wasOpen && (await signalAssignment(workflowId, agent))) return;
    const input: AssignmentInput = {
      runId: this.#run.runId,
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
    this.#childStarts.set(
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
      this.#childStarts.delete(result.assignmentId);
    }
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
