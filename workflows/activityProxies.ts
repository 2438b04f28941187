/**
 * How workflows call activities: timeouts and retries per kind of work. Activities are idempotent,
 * so retrying forever is safe; a few error types mean "retrying cannot help" and stop at once.
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { AggregationActivities } from '../activities/aggregationActivities.ts';
import type { AssignmentActivities } from '../activities/assignmentActivities.ts';
import type { ProviderClosingActivities } from '../activities/providerClosing.ts';
import type { ProviderPollingActivities } from '../activities/providerPolling.ts';
import type { QualificationActivities } from '../activities/qualificationActivities.ts';
import type { ReviewActivities } from '../activities/reviewActivities.ts';
import type { TaskRunActivities } from '../activities/taskRunActivities.ts';

const retry = {
  initialInterval: '200ms',
  backoffCoefficient: 2,
  maximumInterval: '10s',
  // ConfigError: a data or gold file that cannot be read or parsed (config/dataSource.ts names file,
  // line and fix); retrying reads the same bytes, so the run fails with that message instead.
  nonRetryableErrorTypes: ['InvalidTaskRunConfig', 'IllegalTransitionError', 'UnknownTypeError', 'ConfigError'],
};

/**
 * A step cancelled by a shutdown (docs/design.md §6: shutdown always works) is waited for: one that
 * is running finishes its attempt, one waiting for its next retry stops at once.
 */
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;

// Timeouts are short on purpose: an activity lost with a crashed worker is retried only once its
// timeout has passed, so they bound how long a crash stalls a run.

/** Short database and provider calls. */
export const runActivities = proxyActivities<TaskRunActivities>({
  startToCloseTimeout: '20s',
  retry,
  cancellationType,
});

/**
 * The registration decision (docs/design.md §6): a local activity, run by the worker inside the
 * workflow task that accepted the registrations, so that one task decides and answers them.
 */
export const registrationActivities = proxyLocalActivities<Pick<TaskRunActivities, 'assignUnitsToWorkers'>>({
  startToCloseTimeout: '20s',
  retry,
});

/**
 * Handing agents to their assignments' workflows (activities/assignmentStarts.ts): their workers were
 * answered already and their first packets wait for these starts, so an attempt lost with a crashed
 * worker is noticed by its heartbeat within seconds, not at the end of a long timeout.
 */
export const { startAssignmentWorkflows } = proxyActivities<Pick<TaskRunActivities, 'startAssignmentWorkflows'>>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '5s',
  retry: { ...retry, maximumInterval: '2s' },
});

/** Launching and expiring many units: as long as they need, heartbeating as they go. */
export const bulkRunActivities = proxyActivities<Pick<TaskRunActivities, 'launchUnits' | 'expireUnits'>>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '20s',
  retry,
  cancellationType,
});

/** Reading the data source and writing every assignment: long, so it heartbeats its progress. */
export const { createAssignments } = proxyActivities<Pick<TaskRunActivities, 'createAssignments'>>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '60s',
  retry,
  cancellationType,
});

export const assignmentActivities = proxyActivities<AssignmentActivities>({
  startToCloseTimeout: '10s',
  retry,
});

/**
 * An assignment's short database steps as local activities (patch `assignment-steps-in-task`): each
 * runs inside the workflow task that needs it and is on record as a marker, instead of an activity
 * task's three events and a second workflow task. Releasing a unit stays a regular activity: it may
 * call the provider (a re-offer), which must not hold a workflow task.
 */
export const assignmentStepsInTask = proxyLocalActivities<Pick<AssignmentActivities, 'setAgentsStatus' | 'recordAgentAction' | 'recordSubmission'>>({
  startToCloseTimeout: '10s',
  retry,
});

/** Auto-approve and the budget guard's spend reading. */
export const reviewActivities = proxyActivities<Pick<ReviewActivities, 'autoApproveUnits' | 'runSpend'>>({
  startToCloseTimeout: '20s',
  retry,
  cancellationType,
});

/** Onboarding decisions. */
export const qualificationActivities = proxyActivities<QualificationActivities>({
  startToCloseTimeout: '20s',
  retry,
});

/** Aggregation after an overlap item's submission (Dawid-Skene reads the whole run: a longer timeout). */
export const aggregationActivities = proxyActivities<AggregationActivities>({
  startToCloseTimeout: '60s',
  retry,
});

/** The run's poll of its provider for workers who left (docs/design.md §5); a failed poll waits for the next. */
export const providerPollingActivities = proxyActivities<ProviderPollingActivities>({
  startToCloseTimeout: '60s',
  retry: { ...retry, maximumAttempts: 3 },
});

/**
 * The ended run withdrawn at its provider (docs/design.md §5). Retried for some six minutes, then
 * given up (the run's outcome stands; what is left at the provider ends with its own lifetime).
 */
export const providerClosingActivities = proxyActivities<ProviderClosingActivities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '30s',
  retry: { ...retry, initialInterval: '1s', maximumInterval: '2m', maximumAttempts: 10 },
});
