/**
 * Which MTurk assignment pays for a hitloop unit. A HIT is a slot, not a unit: a worker who accepts
 * any of a run's HITs gets whichever unit the run decides (docs/design.md §5), so the assignment of a
 * unit is found at review time among the assignments its worker submitted on the run's HITs, and the
 * choice is recorded once (provider_call `bindAssignment`) so approve, reject and bonus of a unit
 * always name the same assignment and no assignment serves two units.
 */
import { ListAssignmentsForHITCommand, type MTurkClient } from '@aws-sdk/client-mturk';
import { ApplicationFailure } from '@temporalio/activity';
import { ProviderCall, Unit } from '../../model/entities.ts';
import { recordOnce } from '../inHouse.ts';
import type { ProviderContext } from '../types.ts';

const PROVIDER = 'mturk';

export async function assignmentForUnit(ctx: ProviderContext, mturk: MTurkClient, unitId: string, workerId: string): Promise<string> {
  const bound = await ctx.em.findOne(ProviderCall, { provider: PROVIDER, operation: 'bindAssignment', requestKey: `bind:${unitId}` });
  if (bound) return bound.target;
  const unit = await ctx.em.findOneOrFail(Unit, unitId, { fields: ['taskRun', 'providerUnitId'] });
  const runId = unit.taskRun.id;
  const taken = new Set(
    (await ctx.em.find(ProviderCall, { provider: PROVIDER, operation: 'bindAssignment' }, { fields: ['target', 'payload'] }))
      .filter((row) => (row.payload as { runId?: string }).runId === runId)
      .map((row) => row.target),
  );
  const hits = await ctx.em.find(Unit, { taskRun: runId, providerUnitId: { $ne: null } }, { fields: ['providerUnitId'], orderBy: { id: 'asc' } });
  // The unit's own HIT first: with one worker per HIT it is the usual answer.
  const hitIds = [unit.providerUnitId, ...hits.map((h) => h.providerUnitId)].filter((h, i, all): h is string => !!h && all.indexOf(h) === i);
  for (const hitId of hitIds) {
    const out = await mturk.send(new ListAssignmentsForHITCommand({ HITId: hitId, AssignmentStatuses: ['Submitted', 'Approved', 'Rejected'], MaxResults: 100 }));
    const mine = out.Assignments?.find((a) => a.WorkerId === workerId && a.AssignmentId && !taken.has(a.AssignmentId));
    if (mine) {
      await recordOnce(ctx, PROVIDER, 'bindAssignment', `bind:${unitId}`, mine.AssignmentId!, { runId, hitId, workerId });
      const row = await ctx.em.findOneOrFail(ProviderCall, { provider: PROVIDER, operation: 'bindAssignment', requestKey: `bind:${unitId}` });
      return row.target;
    }
  }
  throw ApplicationFailure.retryable(
    `worker ${workerId} has no submitted MTurk assignment on run ${runId}'s HITs for unit ${unitId} yet (the task page posts it to MTurk after hitloop stores the work); retrying`,
    'MTurkAssignmentNotSubmitted',
  );
}
