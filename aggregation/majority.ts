/**
 * Majority vote per item (docs/design.md §3): the label most workers gave; a tie is reported
 * (`tied` lists every label sharing first place) and broken by label order, so the result is
 * stable. Confidence is the winner's share of the item's votes.
 */
import { type AggregationResult, type ItemAggregate, type Vote, countVotes, groupByItem, workerAgreement } from './types.ts';

export function majorityItem(item: string, votes: readonly Vote[]): ItemAggregate {
  const counts = countVotes(votes);
  const top = Math.max(0, ...Object.values(counts));
  const tied = Object.keys(counts).filter((label) => counts[label] === top && top > 0);
  return {
    item,
    label: tied[0] ?? null,
    confidence: votes.length === 0 ? 0 : top / votes.length,
    votes: counts,
    tied,
    workers: votes.map((v) => v.worker),
  };
}

export function majorityVote(votes: readonly Vote[]): AggregationResult {
  const items = [...groupByItem(votes)].map(([item, list]) => majorityItem(item, list));
  const labels = new Map(items.map((i) => [i.item, i.label]));
  const workers = [...workerAgreement(votes, labels)].map(([worker, s]) => ({
    worker,
    accuracy: s.agree / s.items,
    agreement: s.agree / s.items,
    items: s.items,
  }));
  return { items, workers };
}
