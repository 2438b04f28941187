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
