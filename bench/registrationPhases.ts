/**
 * Where the time of one registration goes, read from the TaskRun workflow's history (server event
 * times): the workflow task that accepts the `requestUnit` update, the `assignUnitsToWorkers`
 * activity (dispatch and run), the workflow task after it, the assignment child workflow's start,
 * and the workflow task that completes the update. Meaningful for registrations one at a time
 * (concurrency 1), where each update's events follow one another. On the fast path (patch
 * `registration-answers-before-child-start`) the update is completed by the workflow task after the
 * activity, which also starts the child: the child's start and a separate completing task are then
 * not part of the answer and are not counted. Runs begun with `registration-decided-in-one-workflow-task`
 * accept, decide (a local activity, whose marker is in the task's events) and answer in one workflow
 * task: that task is their one phase, `oneTask`.
 */
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { summarize, type LatencySummary } from './stats.ts';

type Event = NonNullable<History['events']>[number];

function ms(e: Event | undefined): number {
  const t = e?.eventTime;
  if (!t) return Number.NaN;
  return Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6;
}

export const PHASES = [
  'acceptTask',
  'activityDispatch',
  'activityRun',
  'taskAfterActivity',
  'childWorkflowStart',
  'completeTask',
  'oneTask',
  'localActivity',
  'acceptedToCompleted',
] as const;
export type Phase = (typeof PHASES)[number];

export const PHASE_MEANING: Record<Phase, string> = {
  acceptTask: 'workflow task accepting the update (scheduled -> completed; with a local activity, the decision runs inside it)',
  activityDispatch: 'assignUnitsToWorkers activity waiting for the worker (scheduled -> started)',
  activityRun: 'assignUnitsToWorkers activity running (database transaction)',
  taskAfterActivity: 'workflow task after the activity (scheduled -> completed)',
  childWorkflowStart: 'assignment child workflow start (initiated -> started; before the fast path only)',
  completeTask: 'workflow task completing the update after the child started (before the fast path only)',
  oneTask: 'workflow task accepting, deciding (a local activity) and answering (scheduled -> completed)',
  localActivity: 'assignUnitsToWorkers as a local activity inside that task (scheduled -> completed, from its marker)',
  acceptedToCompleted: 'update accepted -> completed, in all',
};

export interface RegistrationPhases {
  /** How the TaskRun workflow decided these registrations. */
  decidedBy: { activity: number; localActivity: number };
  /** Registrations answered in the task that started their assignment workflow (the fast path). */
  answeredBeforeChildStart: number;
  /** Phases that apply (the activity phases only when a regular activity decided). */
  phases: Partial<Record<Phase, LatencySummary>>;
}

/** The times a local activity's marker records (core's marker data: JSON in details.data). */
function localActivityMarker(events: Event[]): { scheduledMs: number; completedMs: number } | undefined {
  for (const e of events) {
    const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
    if (!data) continue;
    type Time = { seconds: number; nanos?: number };
    const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as { complete_time?: Time; original_schedule_time?: Time };
    const at = (t: Time | undefined): number => (t ? Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 : Number.NaN);
    if (parsed.complete_time && parsed.original_schedule_time) return { scheduledMs: at(parsed.original_schedule_time), completedMs: at(parsed.complete_time) };
  }
  return undefined;
}

/** Phases of every update accepted within [fromMs, toMs] (epoch ms). */
export function registrationPhases(histories: History[], fromMs: number, toMs: number): RegistrationPhases {
  const samples = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
  const decidedBy = { activity: 0, localActivity: 0 };
  let answeredBeforeChildStart = 0;
  for (const history of histories) {
    const events = history.events ?? [];
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    const taskSpan = (completedEventId: number): number => {
      const done = byId.get(completedEventId);
      const scheduled = byId.get(Number(done?.workflowTaskCompletedEventAttributes?.scheduledEventId));
      return ms(done) - ms(scheduled);
    };
    /** The workflow task completed right before event `id` (commands are recorded after it). */
    const completedBefore = (id: number): number => {
      for (let i = id - 1; i > 0; i--) if (byId.get(i)?.workflowTaskCompletedEventAttributes) return i;
      return -1;
    };
    for (const [index, accepted] of events.entries()) {
      if (accepted.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name !== 'requestUnit') continue;
      const acceptedAt = ms(accepted);
      if (acceptedAt < fromMs || acceptedAt > toMs) continue;
      const acceptedId = Number(accepted.eventId);
      const end = events.findIndex((e, i) => i > index && Number(e.workflowExecutionUpdateCompletedEventAttributes?.acceptedEventId) === acceptedId);
      if (end < 0) continue;
      const completed = events[end]!;
      const span = events.slice(index + 1, end);
      // Only one registration in flight: no other update may start or end inside its span.
      if (span.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateCompletedEventAttributes)) continue;
      const initiated = span.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
      if (!initiated && span.some((e) => e.markerRecordedEventAttributes)) {
        // Accepted, decided and answered by one workflow task.
        decidedBy.localActivity += 1;
        samples.oneTask.push(taskSpan(completedBefore(acceptedId)));
        const marker = localActivityMarker(span);
        if (marker) samples.localActivity.push(marker.completedMs - marker.scheduledMs);
        samples.acceptedToCompleted.push(ms(completed) - acceptedAt);
        continue;
      }
      // On the fast path the child starts after the answer: looked for past the update's end too.
      const childStarted = events.slice(index + 1).find((e) => Number(e.childWorkflowExecutionStartedEventAttributes?.initiatedEventId) === Number(initiated?.eventId));
      if (!initiated || !childStarted) continue;
      const fastPath = Number(childStarted.eventId) > Number(completed.eventId);
      const scheduled = span.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'assignUnitsToWorkers');
      if (scheduled) {
        const started = span.find((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled.eventId));
        const finished = span.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled.eventId));
        if (!started || !finished) continue;
        decidedBy.activity += 1;
        samples.activityDispatch.push(ms(started) - ms(scheduled));
        samples.activityRun.push(ms(finished) - ms(started));
        samples.taskAfterActivity.push(taskSpan(completedBefore(Number(initiated.eventId))));
      } else {
        decidedBy.localActivity += 1;
      }
      samples.acceptTask.push(taskSpan(completedBefore(acceptedId)));
      if (fastPath) answeredBeforeChildStart += 1;
      else {
        samples.childWorkflowStart.push(ms(childStarted) - ms(initiated));
        samples.completeTask.push(taskSpan(completedBefore(Number(completed.eventId))));
      }
      samples.acceptedToCompleted.push(ms(completed) - acceptedAt);
    }
  }
  const phases: Partial<Record<Phase, LatencySummary>> = {};
  for (const p of PHASES) if (samples[p].length > 0) phases[p] = summarize(samples[p]);
  return { decidedBy, answeredBeforeChildStart, phases };
}
