/**
 * Who gets which unit (docs/design.md §3), as plain deterministic functions of what is known about
 * the worker and the run. The database reads that gather these facts live in ./batch.ts (and
 * ./standing.ts) and the writes in ./assign.ts; nothing here does I/O, so every rule is tested in
 * milliseconds (test/registration.test.ts).
 *
 * The order of one registration:
 *  1. a registration seen before answers with its agent again (`answerForEarlierAgent`);
 *  2. eligibility, in the documented order: blocked -> requirements -> too many wrong golds ->
 *     onboarding state -> `allowed_concurrent` -> `maximum_units_per_worker` (`decideEligibility`);
 *  3. a launched unit of an item the worker has not had must exist (`no_units_available`);
 *  4. then which kind of unit: screening when due, else gold when due, else the normal unit
 *     (`chooseUnitKind`).
 */
import { goldQualificationNames, type TaskRunConfig } from '../config/taskRunConfig.ts';
import { ACTIVE_AGENT_STATUSES, SUBMITTED_AGENT_STATUSES, type AgentStatus } from '../model/status.ts';
import { nextUnitIsGold, tooManyWrongGolds } from '../qualifications/goldPlan.ts';
import { describeRequirement, firstUnmetRequirement, type Grants } from '../qualifications/requirements.ts';
import type { UnitKind } from '../model/entities.ts';
import type { RunLimits, UnitRequestResult } from '../workflows/definitions.ts';

export type Refusal = Extract<UnitRequestResult, { outcome: 'refused' }>;
export type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

/** Agent statuses that count towards `maximum_units_per_worker`: units held, done, or reviewed. */
export const COUNTED_FOR_TASK: readonly AgentStatus[] = [...ACTIVE_AGENT_STATUSES, ...SUBMITTED_AGENT_STATUSES];

/** What the rules need to know of the worker, read in the registration's transaction. */
export interface WorkerStanding {
  /** Blocked at the provider (`hitloop worker block`). */
  blocked: boolean;
  grants: Grants;
  /** Units of this run the worker holds now (counted only when `allowed_concurrent` > 0). */
  holdingInRun: number;
  /** Normal units of any run of the task held or submitted (counted only when `maximum_units_per_worker` > 0). */
  doneInTask: number;
}

/** Eligible so far, but the worker must pass the run's onboarding first. */
export interface NeedsOnboarding {
  outcome: 'needs_onboarding';
}
export interface Eligible {
  outcome: 'eligible';
}

/** Steps 2 of the order above: the first rule the worker fails, onboarding, or eligible. */
export function decideEligibility(config: TaskRunConfig, limits: RunLimits, standing: WorkerStanding): Refusal | NeedsOnboarding | Eligible {
  const { grants } = standing;
  if (standing.blocked) return refuse('blocked', "you are blocked from this provider's tasks");
  if (config.block_qualification && grants.has(config.block_qualification)) return refuse('blocked', 'you are blocked from this task');
  const unmet = firstUnmetRequirement(config.qualifications, grants);
  if (unmet) return refuse('not_qualified', `this task requires ${describeRequirement(unmet)}`);
  if (config.gold.enabled && tooManyWrongGolds(config.gold.max_incorrect_golds, grants.get(goldQualificationNames(config).incorrect) ?? 0)) {
    return refuse('not_qualified', 'too many of your answers on check units of this task were wrong');
  }
  if (config.onboarding_qualification) {
    const onboarded = grants.get(config.onboarding_qualification);
    if (onboarded === 0) return refuse('not_qualified', "you did not pass this task's onboarding");
    if (onboarded === undefined) return { outcome: 'needs_onboarding' };
  }
  if (limits.allowed_concurrent > 0 && standing.holdingInRun >= limits.allowed_concurrent) {
    return refuse(
      'too_many_concurrent',
      `you already hold ${standing.holdingInRun} unit(s) of this run; submit one first (limit ${limits.allowed_concurrent})`,
    );
  }
  if (limits.maximum_units_per_worker > 0 && standing.doneInTask >= limits.maximum_units_per_worker) {
    return refuse('max_for_task', `you have done the most units of this task one worker may do (${limits.maximum_units_per_worker})`);
  }
  return { outcome: 'eligible' };
}

/** Step 3: refused when no launched unit is free for the worker. */
export const NO_UNIT_FREE: Refusal = {
  outcome: 'refused',
  reason: 'no_units_available',
  detail: 'no unit of this run is free for you right now; try again later',
};

/** What the screening and gold rules need, read only when the run uses them. */
export interface QualifyingStanding {
  grants: Grants;
  /** Screening units the worker holds in this run now. */
  screeningHeld: number;
  /** Screening units assigned in the whole run now (for `max_screening_units`). */
  screeningAssignedInRun: number;
  /** Gold units the worker holds in this run now. */
  goldHeld: number;
  /** Normal units of the task the worker has submitted (any run). */
  realSubmittedInTask: number;
  /** Whether one more unit at the run's reward fits in its `max_spend`. */
  budgetFitsOneMore: boolean;
}

/** Step 4: the kind of unit the worker gets now, or a refusal when screening is due but cannot be given. */
export function chooseUnitKind(config: TaskRunConfig, s: QualifyingStanding): { kind: UnitKind } | Refusal {
  if (config.screening.enabled && !s.grants.has(config.screening.passed_qualification!)) {
    if (s.screeningHeld > 0) return refuse('too_many_concurrent', 'you already hold a screening unit of this run; submit it first');
    const cap = config.screening.max_screening_units;
    if (cap > 0 && s.screeningAssignedInRun >= cap) {
      return refuse('no_units_available', 'every screening place of this task is taken right now; try again in a few minutes');
    }
    if (!s.budgetFitsOneMore) return refuse('no_units_available', "this task's budget is spent; no more work is available");
    return { kind: 'screening' };
  }
  if (config.gold.enabled) {
    const names = goldQualificationNames(config);
    const scored = (s.grants.get(names.correct) ?? 0) + (s.grants.get(names.incorrect) ?? 0);
    // A gold unit is paid like any other: past the budget the worker gets the real unit instead.
    if (nextUnitIsGold(config.gold, { scored, inFlight: s.goldHeld, realDone: s.realSubmittedInTask }) && s.budgetFitsOneMore) {
      return { kind: 'gold' };
    }
  }
  return { kind: 'normal' };
}

/** Whether the run checks workers with screening or gold units (then `chooseUnitKind` needs its standing). */
export const usesQualifyingUnits = (config: TaskRunConfig): boolean => config.screening.enabled || config.gold.enabled;

/** An agent an earlier request with the same registration key got. */
export interface EarlierAgent {
  id: string;
  status: AgentStatus;
  unitId: string;
  assignmentId: string;
  unitKind: UnitKind;
  /** Made by the workflow run deciding now (before a crash, or for an earlier request it already answered). */
  madeByThisRun: boolean;
}

/**
 * Step 1: a retried register gets the same agent (`newlyAssigned: false`, the gateway says
 * `resumed: true`) while it holds its unit; a registration that has ended is not reopened.
 */
export function answerForEarlierAgent(earlier: EarlierAgent, workerId: string): Assigned | Refusal {
  if (!ACTIVE_AGENT_STATUSES.includes(earlier.status)) {
    return refuse(
      'no_units_available',
      `this registration already ended (agent ${earlier.id} is ${earlier.status}); register again with a new key`,
    );
  }
  return {
    outcome: 'assigned',
    agentId: earlier.id,
    unitId: earlier.unitId,
    assignmentId: earlier.assignmentId,
    workerId,
    newlyAssigned: earlier.madeByThisRun,
    ...(earlier.unitKind !== 'normal' ? { unitKind: earlier.unitKind } : {}),
  };
}

function refuse(reason: Refusal['reason'], detail: string): Refusal {
  return { outcome: 'refused', reason, detail };
}
