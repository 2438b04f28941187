/**
 * What aggregation works on (docs/design.md §3, quality): one label per (item, worker), as the
 * workers submitted it, and what it gives back per item. Pure data: the aggregators are plain
 * functions, so the activity, the export and the tests call the same code.
 */

/** One worker's answer on one item (a field's value, turned into its label string). */
export interface Vote {
  item: string;
  worker: string;
  label: string;
}

export interface ItemAggregate {
  item: string;
  /** The winning label; null when no vote was given (the item is reported unaggregated). */
  label: string | null;
  /** Probability of `label` (Dawid-Skene posterior; majority: share of the votes), 0..1. */
  confidence: number;
  /** Votes per label, in label order. */
  votes: Record<string, number>;
  /** Labels tied for first place (majority only; more than one means a tie). */
  tied: string[];
  workers: string[];
}

export interface WorkerEstimate {
  worker: string;
  /** Estimated probability the worker labels an item correctly (Dawid-Skene; majority: agreement). */
  accuracy: number;
  /** Share of the worker's labels that agree with the item's aggregated label. */
  agreement: number;
  items: number;
}

export interface AggregationResult {
  items: ItemAggregate[];
  workers: WorkerEstimate[];
}

/** Votes per label of each item, in first-seen order of items. */
export function groupByItem(votes: readonly Vote[]): Map<string, Vote[]> {
  const byItem = new Map<string, Vote[]>();
  for (const vote of votes) {
    const list = byItem.get(vote.item);
    if (list) list.push(vote);
    else byItem.set(vote.item, [vote]);
  }
  return byItem;
}

export function countVotes(votes: readonly Vote[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const label of [...new Set(votes.map((v) => v.label))].sort()) counts[label] = 0;
  for (const v of votes) counts[v.label]! += 1;
  return counts;
}

/** How often each worker's labels agree with the aggregated labels. */
export function workerAgreement(votes: readonly Vote[], labels: ReadonlyMap<string, string | null>): Map<string, { agree: number; items: number }> {
  const stats = new Map<string, { agree: number; items: number }>();
  for (const v of votes) {
    const s = stats.get(v.worker) ?? { agree: 0, items: 0 };
    s.items += 1;
    if (labels.get(v.item) === v.label) s.agree += 1;
    stats.set(v.worker, s);
  }
  return stats;
}
