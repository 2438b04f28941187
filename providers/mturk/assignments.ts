/**
 * Which MTurk assignment pays for a hitloop unit. A HIT is a slot, not a unit: a worker who accepts
 * any of a run's HITs gets whichever unit the run decides (docs/design.md §5), and the task page
 * posts the assignment to MTurk right after hitloop stored the unit. So the k-th unit a worker
 * completed on a run is paid through the k-th assignment that worker submitted on the run's HITs.
 * The rule is deterministic, so reviews running at the same time (approve --all) agree on it without
 * a lock and never pay one assignment for two units; the answer is recorded once
 * (provider_call `bindAssignment`) so approve, reject and bonus of a unit always name the same
 * assignment.
 */
import { type Assignment, ListAssignmentsForHITCommand, type MTurkClient } from '@aws-sdk/client-mturk';
import { ApplicationFailure } from '@temporalio/activity';
import { ProviderCall, Unit, Worker } from '../../model/entities.ts';
import { recordOnce } from '../inHouse.ts';
import type { ProviderContext } from '../types.ts';

const PROVIDER = 'mturk';

async function submittedAssignments(mturk: MTurkClient, hitIds: readonly string[], workerId: string): Promise<Assignment[]> {
  const found: Assignment[] = [];
  for (const hitId of hitIds) {
    let NextToken: string | undefined;
    do {
      const page = await mturk.send(new ListAssignmentsForHITCommand({ HITId: hitId, AssignmentStatuses: ['Submitted', 'Approved', 'Rejected'], MaxResults: 100, NextToken }));
      found.push(...(page.Assignments ?? []).filter((a) => a.WorkerId === workerId));
      NextToken = page.NextToken;
    } while (NextToken);
  }
  const time = (a: Assignment): number => a.SubmitTime?.getTime() ?? 0;
  return found.sort((a, b) => time(a) - time(b) || String(a.AssignmentId).localeCompare(String(b.AssignmentId)));
}

export async function assignmentForUnit(ctx: ProviderContext, mturk: MTurkClient, unitId: string, workerId: string): Promise<string> {
  const bound = await ctx.em.findOne(ProviderCall, { provider: PROVIDER, operation: 'bindAssignment', requestKey: `bind:${unitId}` });
  if (bound) return bound.target;
  const unit = await ctx.em.findOneOrFail(Unit, unitId, { fields: ['taskRun'] });
  const runId = unit.taskRun.id;
  const worker = await ctx.em.findOne(Worker, { provider: PROVIDER, providerWorkerId: workerId }, { fields: ['id'] });
  const completed = worker
    ? await ctx.em.find(Unit, { taskRun: runId, worker: worker.id, completedAt: { $ne: null } }, { fields: ['id'], orderBy: { completedAt: 'asc', id: 'asc' } })
    : [];
  const rank = completed.findIndex((u) => u.id === unitId);
  if (rank < 0) throw ApplicationFailure.nonRetryable(`unit ${unitId} was not completed by MTurk worker ${workerId}; it has no assignment to pay`, 'MTurkNoAssignment');
  const hits = await ctx.em.find(Unit, { taskRun: runId, providerUnitId: { $ne: null } }, { fields: ['providerUnitId'], orderBy: { id: 'asc' } });
  const assignments = await submittedAssignments(mturk, [...new Set(hits.map((h) => h.providerUnitId!))], workerId);
  const assignment = assignments[rank];
  if (!assignment?.AssignmentId) {
    throw ApplicationFailure.retryable(
      `worker ${workerId} has submitted ${assignments.length} MTurk assignment(s) on run ${runId}, and unit ${unitId} is their completed unit number ${rank + 1}; waiting for the task page's externalSubmit`,
      'MTurkAssignmentNotSubmitted',
    );
  }
  await recordOnce(ctx, PROVIDER, 'bindAssignment', `bind:${unitId}`, assignment.AssignmentId, { runId, hitId: assignment.HITId ?? null, workerId });
  return assignment.AssignmentId;
}
