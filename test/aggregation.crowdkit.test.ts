/**
 * hitloop's Dawid-Skene against crowd-kit's (an independent implementation, from PyPI) on the same
 * (item, worker, label) tables: the same labels on at least 99 % of items (docs/design.md §3).
 * The full-stack comparison on a run's exported rows is in test/overlap.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { dawidSkene } from '../aggregation/dawidSkene.ts';
import type { Vote } from '../aggregation/types.ts';
import { crowdKitDawidSkene } from './support/crowdKit.ts';
import { simulatedCrowd } from './support/simulatedCrowd.ts';

function table(seed: number, items: number, workers: number, overlap: number, labels?: string[]): Vote[] {
  const crowd = simulatedCrowd({ seed, items, workers, labels });
  const ids = [...crowd.accuracy.keys()];
  return crowd.truth.flatMap((_, item) =>
    Array.from({ length: overlap }, (_, k) => {
      const worker = ids[(item * 3 + k * 5) % ids.length]!;
      return { item: `i${item}`, worker, label: crowd.answer(worker, item) };
    }),
  );
}

function sameLabels(ours: Map<string, string | null>, theirs: Map<string, string>): number {
  let same = 0;
  for (const [item, label] of theirs) if (ours.get(item) === label) same += 1;
  return same / theirs.size;
}

describe('Dawid-Skene equals crowd-kit on >= 99 % of items', () => {
  it.each([
    { seed: 1, items: 1000, workers: 20, overlap: 3, labels: undefined },
    { seed: 2, items: 500, workers: 15, overlap: 5, labels: ['a', 'b', 'c', 'd'] },
  ])('seed $seed: $items items x $overlap labels', { timeout: 900_000 }, ({ seed, items, workers, overlap, labels }) => {
    const votes = table(seed, items, workers, overlap, labels);
    const ours = new Map(dawidSkene(votes).items.map((i) => [i.item, i.label]));
    const theirs = crowdKitDawidSkene(votes);
    const agreement = sameLabels(ours, theirs);
    console.log(`seed ${seed}: ${items} items, same label as crowd-kit on ${(agreement * 100).toFixed(2)} %`);
    expect(theirs.size).toBe(items);
    expect(agreement).toBeGreaterThanOrEqual(0.99);
  });

  it('with gold items seeding the workers (crowd-kit true_labels)', { timeout: 900_000 }, () => {
    const votes = table(3, 600, 12, 3);
    const crowd = simulatedCrowd({ seed: 3, items: 600, workers: 12 });
    const gold = new Map(crowd.truth.slice(0, 60).map((label, i) => [`i${i}`, label]));
    const ours = new Map(dawidSkene(votes, { gold }).items.map((i) => [i.item, i.label]));
    const theirs = crowdKitDawidSkene(votes, gold);
    const agreement = sameLabels(ours, theirs);
    console.log(`gold-seeded: same label as crowd-kit on ${(agreement * 100).toFixed(2)} %`);
    expect(agreement).toBeGreaterThanOrEqual(0.99);
  });
});
