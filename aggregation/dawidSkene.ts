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
  /** Stop once the evidence lower bound per vote rises by less than this. */
  tolerance?: number;
}

export interface DawidSkeneResult extends AggregationResult {
  labels: string[];
  /** Per worker, rows = true label, columns = given label (both in `labels` order). */
  confusion: Map<string, number[][]>;
  priors: number[];
  iterations: number;
}

/** Floor of probabilities (crowd-kit's too): keeps log() finite where a worker never gave a label. */
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

  // M-step: the run's prior over true labels and each worker's confusion matrix, from the posteriors.
  const mStep = (): { priors: number[]; confusion: number[][][] } => {
    const priors = new Array<number>(L).fill(0);
    for (const p of posteriors) for (let t = 0; t < L; t++) priors[t]! += p[t]! / posteriors.length;
    const confusion = workerIds.map(() => Array.from({ length: L }, () => new Array<number>(L).fill(0)));
    observations.forEach((obs, i) => {
      for (const [w, given] of obs) for (let t = 0; t < L; t++) confusion[w]![t]![given]! += posteriors[i]![t]!;
    });
    for (const matrix of confusion) {
      for (const row of matrix) {
        for (let g = 0; g < L; g++) row[g] = Math.max(row[g]!, EPSILON);
        const sum = row.reduce((a, b) => a + b, 0);
        for (let g = 0; g < L; g++) row[g] = row[g]! / sum;
      }
    }
    return { priors: priors.map((x) => Math.max(x, EPSILON)), confusion };
  };
  // E-step: posteriors from priors and confusion matrices, in log space (gold items keep their truth).
  const eStep = (priors: number[], confusion: number[][][]): number[][] =>
    observations.map((obs, i) => {
      if (fixed[i]! >= 0) return posteriors[i]!;
      const logs = priors.map((prior, t) => Math.log(prior) + obs.reduce((sum, [w, given]) => sum + Math.log(confusion[w]![t]![given]!), 0));
      const top = Math.max(...logs);
      const exp = logs.map((x) => Math.exp(x - top));
      const total = exp.reduce((a, b) => a + b, 0);
      return exp.map((x) => x / total);
    });
  // The evidence lower bound per vote: EM stops once it no longer rises by `tolerance` (as crowd-kit does).
  const lowerBound = (priors: number[], confusion: number[][][]): number => {
    let total = 0;
    observations.forEach((obs, i) => {
      const p = posteriors[i]!;
      for (const [w, given] of obs) for (let t = 0; t < L; t++) total += p[t]! * (Math.log(confusion[w]![t]![given]!) + Math.log(priors[t]!));
      for (let t = 0; t < L; t++) total -= Math.max(p[t]!, EPSILON) * Math.log(Math.max(p[t]!, EPSILON));
    });
    return total / Math.max(1, votes.length);
  };

  let { priors, confusion } = mStep();
  let bound = Number.NEGATIVE_INFINITY;
  let iterations = 0;
  while (iterations < maxIterations) {
    iterations += 1;
    posteriors = eStep(priors, confusion);
    ({ priors, confusion } = mStep());
    const next = lowerBound(priors, confusion);
    if (next - bound < tolerance) break;
    bound = next;
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
