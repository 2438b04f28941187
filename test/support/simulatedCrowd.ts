/**
 * Simulated workers of seeded accuracy against a known truth (docs/design.md §3 tests): each
 * worker answers an item correctly with its accuracy, else picks a wrong label at random. The
 * answer of a (worker, item) pair is fixed by the seed, whatever order the work happens in.
 */
import { SeededRandom } from '../../chaos/random.ts';

export interface SimulatedCrowd {
  labels: string[];
  truth: string[];
  accuracy: Map<string, number>;
  answer(worker: string, item: number): string;
}

export function simulatedCrowd(args: { seed: number; items: number; workers: number; labels?: string[]; accuracy?: [number, number] }): SimulatedCrowd {
  const labels = args.labels ?? ['positive', 'negative'];
  const [low, high] = args.accuracy ?? [0.6, 0.95];
  const random = new SeededRandom(args.seed);
  const truth = Array.from({ length: args.items }, () => random.pick(labels));
  const accuracy = new Map<string, number>(Array.from({ length: args.workers }, (_, i) => [`sim-${i}`, random.between(low, high)]));
  const cache = new Map<string, string>();
  return {
    labels,
    truth,
    accuracy,
    answer(worker, item) {
      const key = `${worker}/${item}`;
      const known = cache.get(key);
      if (known !== undefined) return known;
      const r = new SeededRandom(args.seed ^ hash(key));
      const right = truth[item]!;
      const given = r.chance(accuracy.get(worker) ?? 0.5) ? right : r.pick(labels.filter((l) => l !== right));
      cache.set(key, given);
      return given;
    },
  };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
