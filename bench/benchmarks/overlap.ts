/**
 * Overlap (docs/design.md §2), measured without a stack: fixed against dynamic overlap on a
 * simulated crowd of seeded accuracy (60-95 %) against a known truth (units spent, share correct),
 * and how long one Dawid-Skene pass over a run's votes takes (the aggregation activity runs one per
 * submission of a dawid_skene run).
 */
import { performance } from 'node:perf_hooks';
import { dawidSkene } from '../../aggregation/dawidSkene.ts';
import { unitsWanted, type OverlapPolicy } from '../../aggregation/dynamicOverlap.ts';
import { majorityVote } from '../../aggregation/majority.ts';
import type { Vote } from '../../aggregation/types.ts';
import { simulatedCrowd, type SimulatedCrowd } from '../../test/support/simulatedCrowd.ts';
import type { Benchmark, BenchContext, BenchOutcome } from '../benchmark.ts';
import { round } from '../stats.ts';

/** Each item labelled by workers in turn (never one twice), as many as the policy wants. */
function label(crowd: SimulatedCrowd, policy: OverlapPolicy): { votes: Vote[]; correct: number } {
  const workers = [...crowd.accuracy.keys()];
  const votes: Vote[] = [];
  crowd.truth.forEach((_, item) => {
    const mine: Vote[] = [];
    let units = policy.min;
    for (let k = 0; mine.length < units; k++) {
      const worker = workers[(item * 11 + k) % workers.length]!;
      mine.push({ item: `i${item}`, worker, label: crowd.answer(worker, item) });
      if (mine.length === units) units = unitsWanted({ units, submitted: mine.length, confidence: majorityVote(mine).items[0]!.confidence }, policy);
    }
    votes.push(...mine);
  });
  const labels = new Map(majorityVote(votes).items.map((i) => [i.item, i.label]));
  return { votes, correct: crowd.truth.filter((t, i) => labels.get(`i${i}`) === t).length / crowd.truth.length };
}

export const overlapBenchmark: Benchmark = {
  name: 'overlap',
  title: 'Fixed vs dynamic overlap on a simulated crowd; Dawid-Skene pass time',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const items = ctx.quick ? 500 : 5_000;
    const crowd = simulatedCrowd({ seed: 2026, items, workers: 40 });
    const fixed = label(crowd, { min: 5 });
    const dynamic = label(crowd, { min: 3, max: 7, confidence: 0.75 });
    ctx.log(`${items} items: fixed 5 -> ${fixed.votes.length} units, ${round(fixed.correct * 100, 1)} % correct`);
    ctx.log(`${items} items: dynamic 3..7 @0.75 -> ${dynamic.votes.length} units, ${round(dynamic.correct * 100, 1)} % correct`);
    const started = performance.now();
    const ds = dawidSkene(fixed.votes);
    const dsMs = performance.now() - started;
    ctx.log(`Dawid-Skene over ${fixed.votes.length} votes: ${round(dsMs, 1)} ms (${ds.iterations} iterations)`);
    return {
      figures: { items, fixed: { units: fixed.votes.length, correct: fixed.correct }, dynamic: { units: dynamic.votes.length, correct: dynamic.correct }, dsMs },
      rows: [
        { benchmark: 'overlap', metric: 'units: fixed 5 / dynamic 3..7', value: `${fixed.votes.length} / ${dynamic.votes.length}`, note: `${items} items` },
        { benchmark: 'overlap', metric: 'correct: fixed / dynamic', value: `${round(fixed.correct * 100, 1)} % / ${round(dynamic.correct * 100, 1)} %` },
        { benchmark: 'overlap', metric: 'Dawid-Skene pass', value: `${round(dsMs, 1)} ms`, note: `${fixed.votes.length} votes` },
      ],
    };
  },
};
