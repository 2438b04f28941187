/**
 * How workflows call activities: timeouts and retries per kind of work. Activities are idempotent,
 * so retrying forever is safe; a few error types mean "retrying cannot help" and stop at once.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { AssignmentActivities } from '../activities/assignmentActivities.ts';
import type { QualificationActivities } from '../activities/qualificationActivities.ts';
import type { ReviewActivities } from '../activities/reviewActivities.ts';
import type { TaskRunActivities } from '../activities/taskRunActivities.ts';

const retry = {
  initialInterval: '200ms',
  backoffCoefficient: 2,
  maximumInterval: '10s',
  nonRetryableErrorTypes: ['InvalidTaskRunConfig', 'IllegalTransitionError', 'UnknownTypeError'],
};

/** Short database and provider calls. */
export const runActivities = proxyActivities<TaskRunActivities>({
  startToCloseTimeout: '60s',
  retry,
});

/** Reading the data source and writing every assignment: long, so it heartbeats its progress. */
export const { createAssignments } = proxyActivities<Pick<TaskRunActivities, 'createAssignments'>>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '60s',
  retry,
});

export const assignmentActivities = proxyActivities<AssignmentActivities>({
  startToCloseTimeout: '30s',
  retry,
});

/** Auto-approve and the budget guard's spend reading. */
export const reviewActivities = proxyActivities<Pick<ReviewActivities, 'autoApproveUnits' | 'runSpend'>>({
  startToCloseTimeout: '60s',
  retry,
});

/** Onboarding decisions. */
export const qualificationActivities = proxyActivities<QualificationActivities>({
  startToCloseTimeout: '60s',
  retry,
});
