/**
 * What a TaskRun workflow needs to know of its config to make decisions, and its bookkeeping of
 * unit counts. Pure functions: the workflow's decisions are testable without a server.
 */
import type { UnitStatus } from '../model/status.ts';
import type { RunLimits, UnitCounts } from './definitions.ts';

/** The decisions-relevant part of a validated config, returned by `validateTaskRunConfig`. */
export interface RunPlan {
  taskName: string;
  providerType: string;
  blueprintType: string;
  limits: RunLimits;
  noSubmissionPatienceSeconds: number;
  assignmentDurationSeconds: number;
  reconnectWindowSeconds: number;
  unitsPerAssignment: number;
  /**
   * Overlap (docs/design.md §2): each unit of an assignment is worked alone, by a different worker;
   * `max` and `confidence` change live. Absent = the units of an assignment are a group.
   */
  overlap?: { min: number; max: number; confidence: number | null };
  autoApproveAfterSeconds: number;
  /** The run stops launching before its spend would pass this; null (or absent) = no budget. */
  maxSpend?: number | null;
  /**
   * Seconds between two polls of the provider for workers who left a held unit there (docs/design.md §5);
   * absent = the provider has nothing to poll.
   */
  leaversPollSeconds?: number;
  /** One line per notable setting, for the workflow memo the Web UI shows. */
  summary: Record<string, string | number>;
}

export const emptyUnitCounts = (): UnitCounts => ({
  created: 0,
  launched: 0,
  assigned: 0,
  completed: 0,
  accepted: 0,
  rejected: 0,
  soft_rejected: 0,
  expired: 0,
});

export function moveCount(counts: UnitCounts, from: UnitStatus, to: UnitStatus, n = 1): void {
  counts[from] -= n;
  counts[to] += n;
}

/** Units holding a slot under `max_num_concurrent_units`. */
export const activeUnits = (c: UnitCounts): number => c.launched + c.assigned;

/** Units not yet submitted nor expired: while any remain, the run has work left. */
export const unfinishedUnits = (c: UnitCounts): number => c.created + c.launched + c.assigned;

/** How many created units may be launched now without exceeding the concurrency cap. */
export function unitsToLaunch(c: UnitCounts, maxConcurrent: number, batchLimit: number): number {
  const room = maxConcurrent > 0 ? Math.max(0, maxConcurrent - activeUnits(c)) : Number.POSITIVE_INFINITY;
  return Math.min(room, c.created, batchLimit);
}

/**
 * How many more units at `reward` each fit in what is left of `maxSpend` after `spend`; every unit
 * when there is no budget or the units are free. Counted in ten-thousandths (the precision amounts
 * are stored with), so 0.1 + 0.2 does not cost a unit.
 */
export function unitsWithinBudget(maxSpend: number | null | undefined, spend: number, reward: number): number {
  if (maxSpend === null || maxSpend === undefined || reward <= 0) return Number.POSITIVE_INFINITY;
  const left = Math.round(maxSpend * 10_000) - Math.round(spend * 10_000);
  if (left <= 0) return 0;
  return Math.floor(left / Math.max(1, Math.round(reward * 10_000)));
}
