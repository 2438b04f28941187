/** Latency and rate summaries: what every benchmark prints and stores. */

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    meanMs: round(sorted.length ? sum / sorted.length : Number.NaN),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
  };
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Wall-clock time of an async function, in ms (high resolution). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - start };
}

/**
 * Runs `total` jobs with at most `concurrency` in flight (a closed loop per slot), recording each
 * job's latency. Returns the latencies and the wall time of the whole batch.
 *
 * A failed job stops the loop from starting more, and the loop returns (throwing the first error)
 * only once every job in flight has ended: a caller that then closes its connections never closes
 * one under a request still retrying (the Temporal client's retry timer then throws "Channel has been
 * shut down" from nowhere, killing the process and hiding the error that stopped the loop).
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  job: (index: number) => Promise<void>,
): Promise<{ latenciesMs: number[]; wallMs: number }> {
  const latenciesMs: number[] = [];
  const failures: unknown[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      for (;;) {
        const index = next++;
        if (index >= total || failures.length > 0) return;
        const t0 = performance.now();
        try {
          await job(index);
        } catch (err) {
          failures.push(err);
          return;
        }
        latenciesMs.push(performance.now() - t0);
      }
    }),
  );
  if (failures.length > 0) {
    const first = failures[0] instanceof Error ? failures[0] : new Error(String(failures[0]));
    throw new Error(`${failures.length} of ${latenciesMs.length + failures.length} jobs failed (${concurrency} concurrent); the first: ${first.message}`, {
      cause: first,
    });
  }
  return { latenciesMs, wallMs: performance.now() - start };
}
