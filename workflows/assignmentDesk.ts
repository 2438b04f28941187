/**
 * The assignment desk of a TaskRun workflow: registrations queue up and are decided in batches, one
 * batch at a time (the rules live in registration/); each agent the decision made is handed to its
 * assignment's workflow before its worker hears of it.
 *
 * Runs begun with `REGISTRATION_IN_ONE_TASK` decide with a local activity inside the workflow task that
 * accepted the registrations and answer as it completes; an activity scheduled by that task starts
 * the assignments' workflows (docs/design.md §6). Older runs keep their recorded path: a regular
 * activity decides, the workflow starts each assignment's workflow as a child.
 */
import { ParentClosePolicy, TemporalFailure, condition, getExternalWorkflowHandle, log, patched, startChild, workflowInfo } from '@temporalio/workflow';
import { isFinalTaskRunStatus } from '../model/status.ts';
import { registrationActivities, runActivities, startAssignmentWorkflows } from './activityProxies.ts';
import { AssignmentWorkflow } from './assignment.ts';
import { type UnitRequest, type UnitRequestResult, agentJoinedSignal, assignmentWorkflowId } from './definitions.ts';
import { type Assigned, type HandOver, type HandOverTerms, agentJoinedOf, assignmentInputFor, isQualifying, unitsOfAssignment } from './handOver.ts';
import { ANSWER_BEFORE_CHILD_START, REGISTRATION_IN_ONE_TASK, UNHEALABLE_STEP_FAILS_RUN } from './patches.ts';
import { moveCount } from './runPlan.ts';
import type { TaskRun } from './taskRunState.ts';

/** Registrations handled per activity call when workers arrive together. */
const ASSIGN_BATCH = 50;
/** Agents handed to their assignments' workflows per `startAssignmentWorkflows` call. */
const HAND_OVER_BATCH = 100;

interface PendingRequest {
  request: UnitRequest;
  resolve: (result: UnitRequestResult) => void;
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
  /** Hand-offs still under way after their registration was answered (answerBeforeChildStart, inOneTask). */
  #handingOver = 0;
  /** docs/design.md §6: a local activity decides in the task that accepted the batch, which answers it. */
  readonly #inOneTask: boolean;
  /** Agents decided, not yet handed to their assignments' workflows (inOneTask); `answer` for partners held until then. */
  readonly #toHandOver: Array<{ handOver: HandOver; answer: (() => void) | undefined }> = [];

  constructor(run: TaskRun) {
    this.#run = run;
    this.#answerBeforeChildStart = patched(ANSWER_BEFORE_CHILD_START);
    this.#inOneTask = patched(REGISTRATION_IN_ONE_TASK);
  }

  /** Deciding a batch or handing agents over: the run neither expires units nor continues as new meanwhile. */
  get busy(): boolean {
    return this.assigning || this.#handingOver > 0 || this.#toHandOver.length > 0;
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
    if (!this.#inOneTask) return this.#decide();
    await Promise.all([this.#decide(), this.#handOverQueued()]);
  }

  async #decide(): Promise<void> {
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
        // A retry after a crash finds the agents it made by their derived ids, reported new to this run
        // again; the run counts each once. (Older runs decide with a regular activity: a local one broke
        // their replay, its result and the child start coming in another order than the timers.)
        let results: UnitRequestResult[];
        try {
          const requests = batch.map((p) => p.request);
          results = await (this.#inOneTask ? registrationActivities : runActivities).assignUnitsToWorkers({ runId: run.runId, limits: s.limits, requests });
        } catch (err) {
          // Only a non-retryable failure gets here (a broken gold file, say): the workers are told, the run fails.
          if (!(err instanceof TemporalFailure) || !patched(UNHEALABLE_STEP_FAILS_RUN)) throw err;
          run.unhealable ??= err;
          for (const p of [...batch, ...this.pending.splice(0)]) p.resolve(run.refusedNotRunning());
          run.poke();
          continue;
        }
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
              if (this.#inOneTask) {
                this.#queueHandOver(result, p);
                return;
              } else if (this.#answerBeforeChildStart && this.#startsAssignment(result)) {
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

  /** The run's terms its assignment workflows start with. */
  #terms(): HandOverTerms {
    const { plan } = this.#run.s;
    return {
      runId: this.#run.runId,
      unitsPerAssignment: plan.unitsPerAssignment,
      assignmentDurationSeconds: plan.assignmentDurationSeconds,
      reconnectWindowSeconds: plan.reconnectWindowSeconds,
      autoApproveAfterSeconds: plan.autoApproveAfterSeconds,
      overlap: !!plan.overlap,
    };
  }

  /**
   * This agent's hand-off starts its assignment's workflow. A partner joining one already open (or
   * being started) is told by a signal, which the answer waits for: a signal the worker sent first
   * would name an agent the assignment workflow does not know yet, and be dropped.
   */
  #startsAssignment(result: Assigned): boolean {
    return !(result.assignmentId in this.#run.s.openAssignments) && !this.#childStarts.has(result.assignmentId);
  }

  /**
   * The agent goes to the hand-over queue. The first agent of an assignment is answered at once, with
   * how to start its assignment's workflow (the caller does so before the worker hears of the agent;
   * the hand-over does too, whichever is first). A partner joining an assignment is answered once its
   * join is delivered: a packet of its that came first would name an agent the assignment's workflow
   * does not know yet.
   */
  #queueHandOver(agent: Assigned, p: PendingRequest): void {
    const open = this.#run.s.openAssignments;
    const startsAssignment = !(agent.assignmentId in open);
    if (startsAssignment) open[agent.assignmentId] = unitsOfAssignment(this.#terms(), agent);
    this.#toHandOver.push({ handOver: { agent, startsAssignment }, answer: startsAssignment ? undefined : () => p.resolve(agent) });
    if (startsAssignment) {
      p.resolve({ ...agent, assignmentStart: { taskQueue: workflowInfo().taskQueue, input: assignmentInputFor(this.#terms(), agent) } });
    }
  }

  /**
   * Hands queued agents to their assignments' workflows, one activity at a time, each taking all that
   * queued up meanwhile (up to HAND_OVER_BATCH): an assignment's first agent is always handed over
   * before its partners, in the same activity or an earlier one (activities/assignmentStarts.ts).
   * Scheduled in the workflow task that answers the registrations, so as durable as the answers.
   */
  async #handOverQueued(): Promise<void> {
    const s = this.#run.s;
    for (;;) {
      await condition(() => this.#toHandOver.length > 0 || (isFinalTaskRunStatus(s.status) && !this.assigning));
      if (this.#toHandOver.length === 0) return;
      const handing = this.#toHandOver.splice(0, HAND_OVER_BATCH);
      this.#handingOver += 1;
      try {
        await startAssignmentWorkflows({ terms: this.#terms(), handOvers: handing.map((h) => h.handOver) });
      } finally {
        this.#handingOver -= 1;
      }
      for (const h of handing) h.answer?.();
    }
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
    const agent = agentJoinedOf(result);
    const workflowId = assignmentWorkflowId(result.assignmentId);
    const input = assignmentInputFor(this.#terms(), result);
    const wasOpen = result.assignmentId in s.openAssignments;
    if (!wasOpen) s.openAssignments[result.assignmentId] = input.unitsPerAssignment;
    // A partner's hand-off in the same batch may be starting this assignment's workflow right now.
    const starting = this.#childStarts.get(result.assignmentId);
    if (starting) await starting;
    if (wasOpen && (await signalAssignment(workflowId, agent))) return;
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
