/**
 * Dawid-Skene (1979) by expectation-maximisation over every item of a run (docs/design.md §3):
 * each worker has a confusion matrix P(given label | true label), the run has a prior over true
 * labels, and each item a posterior over its true label. Started from majority-vote shares, as
 * crowd-kit's `DawidSkene` is, so both give the same labels on the same votes (test/aggregation.crowdkit.test.ts).
 *
 * Gold items (known truth) keep their posterior fixed at the truth: they seed the workers'
 * confusion matrices and are never re-estimated.
 */
import { type AggregationResult, type ItemAggregate, type Vote, countVotes, groupByItem, workerAgreement } from './types.ts';

export interface DawidSkeneOptions {
  /** Known true labels by item (gold). */
  gold?: ReadonlyMap<string, string>;
  maxIterations?: number;
  /** Stop once no posterior moves by more than this. */
  tolerance?: number;
}

export interface DawidSkeneResult extends AggregationResult {
  labels: string[];
  /** Per worker, rows = true label, columns = given label (both in `labels` order). */
  confusion: Map<string, number[][]>;
  priors: number[];
  iterations: number;
}

/** Keeps log() finite where a worker never gave a label. */
const EPSILON = 1e-10;

export function dawidSkene(votes: readonly Vote[], options: DawidSkeneOptions = {}): DawidSkeneResult {
  const gold = options.gold ?? new Map<string, string>();
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = options.tolerance ?? 1e-5;
  const byItem = groupByItem(votes);
  const itemIds = [...byItem.keys()];
  const labels = [...new Set([...votes.map((v) => v.label), ...[...gold].filter(([item]) => byItem.has(item)).map(([, l]) => l)])].sort();
  const workerIds = [...new Set(votes.map((v) => v.worker))];
  const L = labels.length;
  const labelIndex = new Map(labels.map((l, i) => [l, i]));
  const workerIndex = new Map(workerIds.map((w, i) => [w, i]));
  // Compact observations: per item, [worker, given label] pairs.
  const observations = itemIds.map((item) => byItem.get(item)!.map((v) => [workerIndex.get(v.worker)!, labelIndex.get(v.label)!] as const));
  const fixed = itemIds.map((item) => (gold.has(item) ? labelIndex.get(gold.get(item)!)! : -1));

  // Start: majority-vote shares (gold items: their truth).
  let posteriors = observations.map((obs, i) => {
    const row = new Array<number>(L).fill(0);
    if (fixed[i]! >= 0) {
      row[fixed[i]!] = 1;
      return row;
    }
    for (const [, given] of obs) row[given] = row[given]! + 1 / obs.length;
    return row;
  });

  let priors = new Array<number>(L).fill(1 / Math.max(1, L));
  let confusion: number[][][] = [];
  let iterations = 0;
  for (; iterations < maxIterations; ) {
    iterations += 1;
    // M-step: priors and each worker's confusion matrix from the current posteriors.
    priors = new Array<number>(L).fill(0);
    for (const p of posteriors) for (let t = 0; t < L; t++) priors[t]! += p[t]! / posteriors.length;
    confusion = workerIds.map(() => Array.from({ length: L }, () => new Array<number>(L).fill(0)));
    observations.forEach((obs, i) => {
      for (const [w, given] of obs) for (let t = 0; t < L; t++) confusion[w]![t]![given]! += posteriors[i]![t]!;
    });
    for (const matrix of confusion) {
      for (const row of matrix) {
        const sum = row.reduce((a, b) => a + b, 0);
        for (let g = 0; g < L; g++) row[g] = sum > 0 ? row[g]! / sum : 0;
      }
    }
    // E-step: posteriors from priors and confusion matrices, in log space.
    let moved = 0;
    const next = observations.map((obs, i) => {
      if (fixed[i]! >= 0) return posteriors[i]!;
      const logs = priors.map((prior, t) => Math.log(prior + EPSILON) + obs.reduce((sum, [w, given]) => sum + Math.log(confusion[w]![t]![given]! + EPSILON), 0));
      const top = Math.max(...logs);
      const exp = logs.map((x) => Math.exp(x - top));
      const total = exp.reduce((a, b) => a + b, 0);
      const row = exp.map((x) => x / total);
      for (let t = 0; t < L; t++) moved = Math.max(moved, Math.abs(row[t]! - posteriors[i]![t]!));
      return row;
    });
    posteriors = next;
    if (moved < tolerance) break;
  }

  const items: ItemAggregate[] = itemIds.map((item, i) => {
    const p = posteriors[i]!;
    let best = 0;
    for (let t = 1; t < L; t++) if (p[t]! > p[best]!) best = t;
    const itemVotes = byItem.get(item)!;
    return {
      item,
      label: L > 0 ? labels[best]! : null,
      confidence: L > 0 ? p[best]! : 0,
      votes: countVotes(itemVotes),
      tied: [],
      workers: itemVotes.map((v) => v.worker),
    };
  });
  const agreed = workerAgreement(votes, new Map(items.map((i) => [i.item, i.label])));
  const workers = workerIds.map((worker, w) => {
    // Accuracy: the chance of a correct label, weighting each true label by the prior.
    const accuracy = priors.reduce((sum, prior, t) => sum + prior * (confusion[w]?.[t]?.[t] ?? 0), 0);
    const s = agreed.get(worker)!;
    return { worker, accuracy, agreement: s.agree / s.items, items: s.items };
  });
  return {
    items,
    workers,
    labels,
    confusion: new Map(workerIds.map((w, i) => [w, confusion[i] ?? []])),
    priors,
    iterations,
  };
}
