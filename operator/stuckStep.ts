/**
 * Why a run that says `running` makes no progress: a step of its workflow that keeps failing and is
 * being retried. Temporal knows (the workflow's pending activities, with attempt and last failure);
 * `status`, `runs` and `wait` say it in one line instead of leaving it to the Web UI.
 */
import type { WorkflowHandle } from '@temporalio/client';

/** A step counts as stuck from this attempt on: one retry is ordinary (a worker restarting). */
export const STUCK_AFTER_ATTEMPTS = 3;

export interface PendingStep {
  activityType?: { name?: string | null } | null;
  attempt?: number | null;
  lastFailure?: { message?: string | null; cause?: { message?: string | null } | null } | null;
}

/** "stuck: <step> failing, N attempts: <message>" for the most-retried step, or null. */
export function describeStuckStep(pending: readonly PendingStep[]): string | null {
  let worst: PendingStep | undefined;
  for (const step of pending) {
    if ((step.attempt ?? 0) < STUCK_AFTER_ATTEMPTS || !step.lastFailure) continue;
    if (!worst || (step.attempt ?? 0) > (worst.attempt ?? 0)) worst = step;
  }
  if (!worst) return null;
  const message = worst.lastFailure?.message || worst.lastFailure?.cause?.message || 'no message';
  return `stuck: ${worst.activityType?.name ?? 'a step'} failing, ${worst.attempt} attempts: ${message.split('\n')[0]}`;
}

/** The stuck line of a workflow, or null when it is not running or nothing keeps failing. */
export async function stuckStepOf(handle: WorkflowHandle): Promise<string | null> {
  try {
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') return null;
    return describeStuckStep(description.raw.pendingActivities ?? []);
  } catch {
    // Not knowing why is no reason to fail a status report.
    return null;
  }
}
