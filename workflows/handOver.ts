/**
 * Handing an agent to its assignment's workflow (docs/design.md §6): what that workflow is started
 * with, the same whether the TaskRun workflow starts it as a child (runs begun before
 * `REGISTRATION_IN_ONE_TASK`), or the gateway or the `startAssignmentWorkflows` activity starts it.
 * Plain functions, no workflow APIs: the activity side imports them too.
 */
import type { AssignmentInput } from './assignment.ts';
import type { AgentJoined, UnitRequestResult } from './definitions.ts';

export type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

/** How to start an assignment's workflow with its first agent (activities/assignmentStarts.ts). */
export interface AssignmentStart {
  taskQueue: string;
  input: AssignmentInput;
}

/** One agent to hand over: the first of its assignment starts the assignment's workflow, a partner joins it. */
export interface HandOver {
  agent: Assigned;
  startsAssignment: boolean;
}

/** The run's terms every assignment workflow of it starts with (from its plan). */
export interface HandOverTerms {
  runId: string;
  unitsPerAssignment: number;
  assignmentDurationSeconds: number;
  reconnectWindowSeconds: number;
  autoApproveAfterSeconds: number | undefined;
  /** Overlap runs: each agent works its unit alone (AssignmentInput.independent). */
  overlap: boolean;
}

/** Screening and gold units: one unit per assignment, made for one worker. */
export function isQualifying(result: Assigned): boolean {
  return result.unitKind !== undefined && result.unitKind !== 'normal';
}

/** Units of the agent's assignment: one for a screening or gold unit, else the run's. */
export function unitsOfAssignment(terms: HandOverTerms, result: Assigned): number {
  return isQualifying(result) ? 1 : terms.unitsPerAssignment;
}

export function agentJoinedOf(result: Assigned): AgentJoined {
  return { agentId: result.agentId, unitId: result.unitId, workerId: result.workerId };
}

/** What the assignment workflow of a newly assigned agent starts with (the agent as its first). */
export function assignmentInputFor(terms: HandOverTerms, result: Assigned): AssignmentInput {
  return {
    runId: terms.runId,
    assignmentId: result.assignmentId,
    unitsPerAssignment: unitsOfAssignment(terms, result),
    assignmentDurationSeconds: terms.assignmentDurationSeconds,
    reconnectWindowSeconds: terms.reconnectWindowSeconds,
    autoApproveAfterSeconds: terms.autoApproveAfterSeconds,
    firstAgent: agentJoinedOf(result),
    // Only overlap runs carry it, so the start command of every other run is unchanged.
    ...(terms.overlap && !isQualifying(result) ? { independent: true } : {}),
  };
}
