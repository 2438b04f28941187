/**
 * No worker twice on one item (docs/design.md §2, overlap): an item is known across the runs of a
 * task by its key (sha256 of its data as canonical JSON); a worker given a unit of it claims it in
 * the registration's transaction, and the claim's unique key refuses a second one even under
 * concurrency. Claims are never released: a worker who returned a unit does not get the item again.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../config/dataSource.ts';
import type { EntityManager } from '../model/database.ts';
import { Assignment, ItemClaim } from '../model/entities.ts';

export function itemKeyOf(data: unknown): string {
  return createHash('sha256').update(canonicalJson(data)).digest('hex');
}

/** Assignments of the run whose item the worker already claimed in this task. */
export async function claimedAssignments(em: EntityManager, args: { runId: string; taskId: string; workerId: string }): Promise<string[]> {
  const claims = await em.find(ItemClaim, { task: args.taskId, worker: args.workerId }, { fields: ['itemKey'] });
  if (claims.length === 0) return [];
  const assignments = await em.find(
    Assignment,
    { taskRun: args.runId, itemKey: { $in: claims.map((c) => c.itemKey) } },
    { fields: ['id'] },
  );
  return assignments.map((a) => a.id);
}

/** Claim the unit's item for the worker; throws (unique violation) if it was claimed meanwhile. */
export async function claimItem(
  em: EntityManager,
  args: { taskId: string; assignment: Pick<Assignment, 'id' | 'itemKey'>; workerId: string; unitId: string },
): Promise<void> {
  await em.insert(ItemClaim, {
    task: args.taskId,
    itemKey: args.assignment.itemKey ?? args.assignment.id,
    worker: args.workerId,
    unitId: args.unitId,
    createdAt: new Date(),
  });
}
