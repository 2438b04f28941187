/**
 * Dynamic overlap (docs/design.md §2; Toloka's dynamic overlap, MTurk's "extend if agreement
 * below"): an item starts with `min` units and gets one more at a time, once all it has are
 * submitted, while its aggregated confidence is below `confidence` and `max` is not reached.
 */

export interface OverlapPolicy {
  min: number;
  /** Default: min (fixed overlap). */
  max?: number;
  /** Absent: fixed overlap. */
  confidence?: number;
}

/**
 * How many units the item should have in all, given how many it has, how many are submitted and
 * its aggregated confidence (lowest over the aggregated fields; null when not aggregated).
 */
export function unitsWanted(item: { units: number; submitted: number; confidence: number | null }, policy: OverlapPolicy): number {
  const max = Math.max(policy.min, policy.max ?? policy.min);
  const units = Math.max(item.units, policy.min);
  // Decide only once every unit the item has is in: more answers may raise the confidence.
  if (item.submitted < units || policy.confidence === undefined) return units;
  if (units >= max) return units;
  return item.confidence === null || item.confidence < policy.confidence ? units + 1 : units;
}
