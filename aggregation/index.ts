/**
 * The aggregation methods a run config may name (`aggregate.method`), by name. Plain functions of
 * the votes: the activity after each submission, `hitloop export --aggregated` and `review` all
 * call `aggregate` on the same (item, worker, label) rows.
 */
import type { AGGREGATION_METHOD_NAMES } from '../config/taskRunConfig.ts';
import { dawidSkene } from './dawidSkene.ts';
import { majorityVote } from './majority.ts';
import type { AggregationResult, Vote } from './types.ts';

export type AggregationMethod = (typeof AGGREGATION_METHOD_NAMES)[number];

export function aggregate(method: AggregationMethod, votes: readonly Vote[], gold?: ReadonlyMap<string, string>): AggregationResult {
  return method === 'dawid_skene' ? dawidSkene(votes, { gold }) : majorityVote(votes);
}

/** A submitted value as a label: strings as they are, anything else as JSON; absent -> null. */
export function labelOf(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export type { AggregationResult, ItemAggregate, Vote, WorkerEstimate } from './types.ts';
