/**
 * No worker twice on one item (docs/design.md §2, overlap): an item is known across the runs of a
 * task by its key (sha256 of its data as canonical JSON); a worker given a unit of it claims it in
 * the registration's transaction, and the claim's unique key refuses a second one even under
 * concurrency. Claims are never released: a worker who returned a unit does not get the item again.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../config/dataSource.ts';
import type { EntityManager } from '../model/database.ts';
import { ItemClaim } from '../model/entities.ts';

export function itemKeyOf(data: unknown): string {
  return createHash('sha256').update(canonicalJson(data)).digest('hex');
}

/** A worker's claim on the item of the unit they were given. */
export interface ItemClaimOf {
  assignment: { id: string; itemKey?: string | null | undefined };
  workerId: string;
  unitId: string;
}

/** Claim each unit's item for its worker, in one statement; throws (unique violation) if one was claimed meanwhile. */
export async function claimItems(em: EntityManager, taskId: string, claims: readonly ItemClaimOf[]): Promise<void> {
  if (claims.length === 0) return;
  const createdAt = new Date();
  await em.insertMany(
    ItemClaim,
    // Rows from before item keys: the assignment stands for its item.
    claims.map((c) => ({ task: taskId, itemKey: c.assignment.itemKey ?? c.assignment.id, worker: c.workerId, unitId: c.unitId, createdAt })),
  );
}

/** Claim the unit's item for the worker; throws (unique violation) if it was claimed meanwhile. */
export function claimItem(em: EntityManager, args: { taskId: string } & ItemClaimOf): Promise<void> {
  return claimItems(em, args.taskId, [args]);
}
