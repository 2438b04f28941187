/**
 * "Item k of up to n" on the worker's page, decided when a unit is handed out (docs/design.md §5):
 * - k counts the units this worker took in this run and did not give back (held, submitted or
 *   reviewed; any kind, so a gold unit looks like any other), this one included;
 * - n is the most units the worker can get in this run: one per item (batch.ts's freeUnitFor never
 *   gives a worker two units of one item), or `maximum_units_per_worker` when lower (never below k).
 * n is an upper bound, not a promise: the units may run out or go to others first, and the cap counts
 * the worker's units over every run of the task. So the page says "up to".
 */
import type { UnitPosition } from '../blueprints/types.ts';

/**
 * The position of the unit about to be given to a worker who has `taken` units of the run (held,
 * submitted or reviewed) in a run of `items` items.
 */
export function unitPosition(taken: number, items: number, maximumUnitsPerWorker: number): UnitPosition {
  const index = taken + 1;
  const upTo = maximumUnitsPerWorker > 0 ? Math.min(items, maximumUnitsPerWorker) : items;
  return { index, upTo: Math.max(upTo, index) };
}
