/**
 * Patch ids of the TaskRun workflow (docs/design.md §6): `patched(id)` is true for runs begun on
 * code that has the change, false when replaying a history recorded before it.
 */

/** A shutdown cancels the step the run is waiting on (a step that keeps failing used to hold shutdown for ever). */
export const SHUTDOWN_CANCELS_STEPS = 'shutdown-cancels-steps';
/**
 * A step that cannot succeed ends the run `failed`, on record, and refuses the workers waiting for a
 * unit with a sentence instead of leaving them waiting.
 */
export const UNHEALABLE_STEP_FAILS_RUN = 'unhealable-step-fails-run';
/**
 * A registration whose agent starts its assignment's workflow is answered in the workflow task that
 * issues the start: the start command is as durable as the answer, but the answer no longer waits for
 * the start's round trip. A worker's first signal may then reach the assignment workflow before it
 * exists: the gateway retries it for a while (gateway/workflowCalls.ts). A partner joining an open
 * assignment is still answered once its join signal is delivered.
 */
export const ANSWER_BEFORE_CHILD_START = 'registration-answers-before-child-start';
/**
 * A batch of registrations is decided by a local activity inside the workflow task that accepted
 * them, and answered as that task completes; the same task schedules `startAssignmentWorkflows`, which
 * starts each assignment's workflow with its first agent and signals partners to join (no child
 * workflows: the Temporal UI lists a run's assignments by `HitloopRunId`); the answer to a first agent
 * says how to start it, and the gateway does so at once. One workflow task per batch, no waiting for a
 * workflow start.
 */
export const REGISTRATION_IN_ONE_TASK = 'registration-decided-in-one-workflow-task';
/**
 * A run that ends (completed, cancelled or failed) has its provider withdraw what workers could still
 * take there (`closeRunAtProvider`: MTurk's HITs with a free slot), after its status is on record.
 */
export const CLOSE_RUN_AT_PROVIDER = 'close-run-at-provider';
/**
 * AssignmentWorkflow: its short database steps (agents' status, actions, submissions) run as local
 * activities inside the workflow task that needs them (workflows/activityProxies.ts
 * `assignmentStepsInTask`): fewer events and workflow tasks per agent, so Temporal does less for each
 * registration and submission (docs/design.md §6).
 */
export const ASSIGNMENT_STEPS_IN_TASK = 'assignment-steps-in-task';
