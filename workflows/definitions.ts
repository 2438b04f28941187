/**
 * Every signal, update and query of hitloop's workflows, with the payload each carries.
 * The gateway, the operator API and the workflows all import from here, so a name read in the
 * Temporal Web UI leads straight to this file. Payloads are validated with zod on arrival.
 *
 * Each payload schema is built on its first use (`z.lazy`): the workflow bundle evaluates this file
 * again for every new workflow instance, which uses few of them (a new AssignmentWorkflow none, until
 * its agent sends something), and building zod schemas is most of what evaluating it costs
 * (bench/workflowInstanceCost.ts).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { UnitKind } from '../model/entities.ts';
import type { AssignmentStart } from './handOver.ts';
import { moneyRules, moneySchema } from '../model/money.ts';
import { PROVIDER_LEAVING_STATUSES, RELEASED_UNIT_STATUSES, type TaskRunStatus, type UnitStatus } from '../model/status.ts';
import { storableJsonObject, storableString } from '../model/storableJson.ts';

// Only what the database stores exactly gets in: a request the activities could not write would
// otherwise be retried forever while the run waits on it (one worker stalling everyone).
const id = storableString().min(1).max(200);
// Checked in place, not copied: keys such as `__proto__` are data (model/storableJson.ts).
const jsonObject = storableJsonObject();

// ---------------------------------------------------------------------------------------------
// TaskRunWorkflow (`taskrun-<runId>`)
// ---------------------------------------------------------------------------------------------

/** A worker asks for a unit (the gateway's `register` packet). The workflow alone decides. */
export const UnitRequestSchema = z.lazy(() =>
  z.object({
    provider: storableString().min(1).max(100),
    providerWorkerId: id,
    /** Chosen by the client once per page load: a retried register returns the same agent. */
    registrationKey: id,
  }),
);
export type UnitRequest = z.infer<typeof UnitRequestSchema>;

export const REFUSAL_REASONS = [
  'blocked',
  'not_qualified',
  'too_many_concurrent',
  'max_for_task',
  'no_units_available',
  'run_not_running',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type UnitRequestResult =
  | {
      outcome: 'assigned';
      agentId: string;
      unitId: string;
      assignmentId: string;
      workerId: string;
      /** False when the request was a retry of one that already got this agent. */
      newlyAssigned: boolean;
      /**
       * `screening` / `gold` units are made for the worker on the spot (absent means `normal`).
       * Never show it to the worker: a gold unit must look like any other.
       */
      unitKind?: UnitKind;
      /**
       * The first agent of its assignment (docs/design.md §6): the caller starts the assignment's
       * workflow with this at once (gateway/workflowCalls.ts), so the worker's first packets find it;
       * the run's own hand-over starts it too, whichever comes first. Never sent to the worker.
       */
      assignmentStart?: AssignmentStart;
    }
  | {
      /**
       * The worker has not passed the run's onboarding (docs/design.md §3): show them `initData` (the
       * blueprint's onboarding form) and send their answers with the `submitOnboarding` update.
       */
      outcome: 'onboarding';
      onboardingAgentId: string;
      workerId: string;
      initData: unknown;
      /** False when the request was a retry that found the onboarding already started. */
      newlyStarted: boolean;
    }
  | { outcome: 'refused'; reason: RefusalReason; detail: string };

export const requestUnitUpdate = defineUpdate<UnitRequestResult, [UnitRequest]>('requestUnit');

/**
 * A worker's onboarding answers (after an `onboarding` outcome), with the worker's original request.
 * The blueprint's validator decides: pass grants the onboarding qualification 1 and answers like
 * `requestUnit` for the same request (a unit, in the same session); fail grants it 0 and answers
 * `refused` / `not_qualified`. Sent again (same or another submitKey), it answers the same.
 */
export const OnboardingSubmitSchema = z.lazy(() =>
  UnitRequestSchema.unwrap().extend({
    onboardingAgentId: id,
    submitKey: id,
    data: jsonObject,
  }),
);
export type OnboardingSubmit = z.infer<typeof OnboardingSubmitSchema>;
export const submitOnboardingUpdate = defineUpdate<UnitRequestResult, [OnboardingSubmit]>('submitOnboarding');

const cap = () => z.number('must be an integer >= 0 (0 = no cap)').int('must be an integer >= 0 (0 = no cap)').min(0, 'must be an integer >= 0 (0 = no cap)');

/** Caps and terms an operator may change while the run is live (docs/design.md §2). */
export const RunLimitsChangeSchema = z.lazy(() =>
  z
    .object({
      max_num_concurrent_units: cap(),
      allowed_concurrent: cap(),
      maximum_units_per_worker: cap(),
      task_reward: moneySchema(moneyRules(true), { allowZero: true }),
      task_lifetime_seconds: z.number('must be a whole number of seconds > 0').int('must be a whole number of seconds > 0').positive('must be a whole number of seconds > 0'),
      /** Overlap runs (docs/design.md §2): the most units one item may get, and the confidence that stops adding them. */
      'overlap.max': z.number('must be an integer >= 1').int('must be an integer >= 1').min(1, 'must be an integer >= 1'),
      'overlap.confidence': z
        .number('must be a number between 0 and 1 (exclusive)')
        .gt(0, 'must be a number between 0 and 1 (exclusive)')
        .lt(1, 'must be a number between 0 and 1 (exclusive)'),
      /** The run's budget (units, gold and screening pay, bonuses); raising it lets a run stopped by it launch again. */
      max_spend: moneySchema(moneyRules()),
    })
    .partial()
    .strict()
    .refine((change) => Object.keys(change).length > 0, { message: 'name at least one setting to change' }),
);
export type RunLimitsChange = z.infer<typeof RunLimitsChangeSchema>;
export const OVERLAP_LIMIT_KEYS = ['overlap.max', 'overlap.confidence'] as const;
/**
 * The caps every run has; overlap's live settings are kept in the run's plan. `max_spend` is absent in
 * runs launched without a budget (and in runs from before it could change).
 */
export type RunLimits = Required<Omit<RunLimitsChange, (typeof OVERLAP_LIMIT_KEYS)[number] | 'max_spend'>> & { max_spend?: number };

/** An update, not a fire-and-forget signal, so that a bad value is refused to the caller. */
export const changeRunLimitsUpdate = defineUpdate<RunLimits, [RunLimitsChange]>('changeRunLimits');

export const ShutdownRequestSchema = z.lazy(() => z.object({ reason: z.string().min(1).max(500).default('operator') }));
export type ShutdownRequest = z.input<typeof ShutdownRequestSchema>;
export const shutdownRunSignal = defineSignal<[ShutdownRequest]>('shutdownRun');

/** From an assignment workflow: its unit was submitted. */
export const UnitCompletedSchema = z.lazy(() => z.object({ unitId: id, agentId: id, assignmentId: id }));
export type UnitCompleted = z.infer<typeof UnitCompletedSchema>;
export const unitCompletedSignal = defineSignal<[UnitCompleted]>('unitCompleted');

/** From an assignment workflow: its agent left before submitting; the unit is back in the pool. */
export const UnitReleasedSchema = z.lazy(() =>
  z.object({
    unitId: id,
    agentId: id,
    assignmentId: id,
    reason: z.string(),
    /** Where the unit went: back to the pool (`launched`, the default), or `expired` (a screening or gold unit, made for that worker). */
    unitStatus: z.enum(RELEASED_UNIT_STATUSES).optional(),
  }),
);
export type UnitReleased = z.infer<typeof UnitReleasedSchema>;
export const unitReleasedSignal = defineSignal<[UnitReleased]>('unitReleased');

/** From an assignment workflow of an overlap run: dynamic overlap created `count` more units of its item (status `created`). */
export const UnitsAddedSchema = z.lazy(() => z.object({ assignmentId: id, count: z.number().int().positive() }));
export type UnitsAdded = z.infer<typeof UnitsAddedSchema>;
export const unitsAddedSignal = defineSignal<[UnitsAdded]>('unitsAdded');

export type UnitCounts = Record<UnitStatus, number>;

/** What every view of a run's state says: the workflow's query and the operator's database reading. */
export interface RunSummary {
  runId: string;
  taskName: string;
  status: TaskRunStatus;
  endReason: string | null;
  failureReason: string | null;
  units: UnitCounts;
  totalUnits: number;
}

export interface RunStatusView extends RunSummary {
  limits: RunLimits;
  startedAt: string;
  lastSubmissionAt: string | null;
  /** Assignment workflows this run believes open. */
  openAssignments: number;
  historyLength: number;
  continuedAsNewTimes: number;
}
export const runStatusQuery = defineQuery<RunStatusView>('runStatus');

// ---------------------------------------------------------------------------------------------
// AssignmentWorkflow (`assignment-<assignmentId>`): the agent-facing signals the gateway sends
// ---------------------------------------------------------------------------------------------

/** From the TaskRun workflow: a worker was given one of this assignment's units. */
export const AgentJoinedSchema = z.lazy(() => z.object({ agentId: id, unitId: id, workerId: id }));
export type AgentJoined = z.infer<typeof AgentJoinedSchema>;
export const agentJoinedSignal = defineSignal<[AgentJoined]>('agentJoined');

/** A live update from the agent's page (a chat message, a draft, a remote-procedure call). */
export const AgentActionSchema = z.lazy(() =>
  z.object({
    agentId: id,
    /** Client-chosen, unique per agent: a replayed packet is applied once. */
    actionId: id,
    data: jsonObject,
  }),
);
export type AgentAction = z.infer<typeof AgentActionSchema>;
export const agentActionSignal = defineSignal<[AgentAction]>('agentAction');

export const AgentSubmitSchema = z.lazy(() => z.object({ agentId: id, submitKey: id, data: jsonObject }));
export type AgentSubmit = z.infer<typeof AgentSubmitSchema>;
export const agentSubmitSignal = defineSignal<[AgentSubmit]>('agentSubmit');

/** The agent's socket dropped: its reconnect window starts. */
export const AgentConnectionSchema = z.lazy(() => z.object({ agentId: id, connectionId: z.string().max(200) }));
export type AgentConnection = z.infer<typeof AgentConnectionSchema>;
export const agentDisconnectedSignal = defineSignal<[AgentConnection]>('agentDisconnected');
export const agentReconnectedSignal = defineSignal<[AgentConnection]>('agentReconnected');

/**
 * The worker gave the unit back before submitting. `status` says how, when a provider reports it
 * (docs/design.md §5: a returned study is `returned`, a session that ran out of time `timeout`); absent = `returned`.
 */
export const AgentReturnedSchema = z.lazy(() => z.object({ agentId: id, status: z.enum(PROVIDER_LEAVING_STATUSES).optional() }));
export type AgentReturned = z.infer<typeof AgentReturnedSchema>;
export const agentReturnedSignal = defineSignal<[AgentReturned]>('agentReturned');

/** From the TaskRun workflow at shutdown or end of lifetime: stop, the units were expired. */
export const ExpireAssignmentSchema = z.lazy(() => z.object({ reason: z.string() }));
export type ExpireAssignment = z.infer<typeof ExpireAssignmentSchema>;
export const expireAssignmentSignal = defineSignal<[ExpireAssignment]>('expireAssignment');

export interface AssignmentAgentView {
  agentId: string;
  unitId: string;
  workerId: string;
  status: string;
  connected: boolean;
  deadline: string;
  reconnectDeadline: string | null;
}
export interface AssignmentStateView {
  assignmentId: string;
  runId: string;
  agents: AssignmentAgentView[];
  completedUnits: string[];
  ended: boolean;
}
export const assignmentStateQuery = defineQuery<AssignmentStateView>('assignmentState');

export const taskRunWorkflowId = (runId: string): string => `taskrun-${runId}`;
export const assignmentWorkflowId = (assignmentId: string): string => `assignment-${assignmentId}`;
/** The run id of a TaskRun workflow id; a plain-client start may use any id, which is then the run id. */
export const runIdOfWorkflowId = (workflowId: string): string =>
  workflowId.startsWith('taskrun-') ? workflowId.slice('taskrun-'.length) : workflowId;
