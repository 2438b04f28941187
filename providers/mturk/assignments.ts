/**
 * Which MTurk assignment pays for a hitloop unit. A HIT is a slot, not a unit: a worker who accepts
 * any of a run's HITs gets whichever unit the run decides (docs/design.md §5), and the task page
 * posts that assignment to MTurk right after hitloop stored the unit. The gateway records the
 * assignment a page was opened from as the agent's session (providers/agentSessions.ts), so the
 * unit's submitting agent names its assignment: review asks MTurk about that one assignment
 * (GetAssignment), whatever the size of the run.
 *
 * Agents registered before sessions were recorded have none; for them the older rule holds: the
 * k-th unit a worker completed on a run is paid through the k-th assignment that worker submitted on
 * the run's HITs (listing every HIT's assignments, so slow on large runs).
 *
 * The answer is recorded once (provider_call `bindAssignment`), so approve, reject and bonus of a
 * unit always name the same assignment.
 */
import { type Assignment, GetAssignmentCommand, ListAssignmentsForHITCommand, type MTurkClient } from '@aws-sdk/client-mturk';
import { ApplicationFailure } from '@temporalio/activity';
import { Agent, ProviderCall, Unit, Worker } from '../../model/entities.ts';
import { agentSession } from '../agentSessions.ts';
import { recordOnce } from '../inHouse.ts';
import { isRequestError } from './client.ts';
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

/** The older rule, for an agent with no recorded session: the worker's k-th completed unit is their k-th submitted assignment. */
async function assignmentByRank(ctx: ProviderContext, mturk: MTurkClient, runId: string, unitId: string, workerId: string): Promise<string> {
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
  return assignment.AssignmentId;
}

/**
 * The submitted MTurk assignment that pays for `unitId`, as MTurk reports it now (one GetAssignment).
 * Retryable while the worker's page has not posted externalSubmit yet.
 */
export async function submittedAssignmentOf(ctx: ProviderContext, mturk: MTurkClient, unitId: string, workerId: string): Promise<Assignment> {
  const bound = await ctx.em.findOne(ProviderCall, { provider: PROVIDER, operation: 'bindAssignment', requestKey: `bind:${unitId}` });
  let assignmentId = bound?.target;
  const unit = await ctx.em.findOneOrFail(Unit, unitId, { fields: ['taskRun'] });
  const runId = unit.taskRun.id;
  if (!assignmentId) {
    const agent = await ctx.em.findOne(Agent, { unit: unitId, submittedAt: { $ne: null } }, { fields: ['id'], orderBy: { submittedAt: 'desc' } });
    assignmentId = (agent ? await agentSession(ctx.em, PROVIDER, agent.id) : null) ?? (await assignmentByRank(ctx, mturk, runId, unitId, workerId));
  }
  let answer;
  try {
    answer = await mturk.send(new GetAssignmentCommand({ AssignmentId: assignmentId }));
  } catch (err) {
    if (!isRequestError(err)) throw err;
    throw ApplicationFailure.nonRetryable(
      `MTurk cannot show assignment ${assignmentId}, through which unit ${unitId} is paid (${(err as Error).message}); look it up in the requester site`,
      'MTurkNoAssignment',
    );
  }
  const assignment = answer.Assignment;
  if (!assignment || assignment.WorkerId !== workerId) {
    throw ApplicationFailure.nonRetryable(`MTurk assignment ${assignmentId} is not worker ${workerId}'s; unit ${unitId} cannot be paid through it`, 'MTurkNoAssignment');
  }
  if (!['Submitted', 'Approved', 'Rejected'].includes(String(assignment.AssignmentStatus))) {
    throw ApplicationFailure.retryable(
      `worker ${workerId}'s MTurk assignment ${assignmentId} for unit ${unitId} is not submitted yet; waiting for the task page's externalSubmit`,
      'MTurkAssignmentNotSubmitted',
    );
  }
  if (!bound) await recordOnce(ctx, PROVIDER, 'bindAssignment', `bind:${unitId}`, assignmentId, { runId, hitId: assignment.HITId ?? null, workerId });
  return assignment;
}
