/**
 * "Item k of up to n" on the worker's page, decided when a unit is handed out (docs/design.md §5):
 * - k counts the units this worker took in this run and did not give back (held, submitted or
 *   reviewed; any kind, so a gold unit looks like any other), this one included;
 * - n is the most units the worker can get in this run: one per item (standing.ts's freeUnitFor never
 *   gives a worker two units of one item), or `maximum_units_per_worker` when lower (never below k).
 * n is an upper bound, not a promise: the units may run out or go to others first, and the cap counts
 * the worker's units over every run of the task. So the page says "up to".
 */
import type { EntityManager } from '../model/database.ts';
import { Agent, TaskRun } from '../model/entities.ts';
import type { UnitPosition } from '../blueprints/types.ts';
import { COUNTED_FOR_TASK } from './decision.ts';

/** The position of the unit about to be given to `workerId` (its agent not created yet). */
export async function nextUnitPosition(
  em: EntityManager,
  args: { runId: string; workerId: string; maximumUnitsPerWorker: number },
): Promise<UnitPosition> {
  const taken = await em.count(Agent, { worker: args.workerId, taskRun: args.runId, status: { $in: [...COUNTED_FOR_TASK] } });
  const run = await em.findOneOrFail(TaskRun, args.runId, { fields: ['assignmentCount'] });
  const index = taken + 1;
  const items = run.assignmentCount;
  const upTo = args.maximumUnitsPerWorker > 0 ? Math.min(items, args.maximumUnitsPerWorker) : items;
  return { index, upTo: Math.max(upTo, index) };
}
