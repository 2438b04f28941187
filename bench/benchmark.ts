/**
 * What a benchmark is: a name, a function that measures and returns its figures, and the rows it
 * adds to the results table. Each benchmark starts its own processes (see bench/setup.ts), so one
 * benchmark's leftovers never weigh on the next.
 */
import type { MachineDescription } from './machine.ts';

export interface TableRow {
  benchmark: string;
  metric: string;
  value: string;
  /** A baseline or a comparison, when the figure has one. */
  note?: string;
}

export interface BenchContext {
  /** Where this benchmark's processes keep logs, databases and profiles. */
  workDir: string;
  /** Run worker and gateway under `node --cpu-prof` and summarise their profiles. */
  profile: boolean;
  /** Smaller sizes, for a quick check of the benchmark itself. */
  quick: boolean;
  log(line: string): void;
  /** Set by the benchmark once its stack is up. */
  machine?: MachineDescription;
}

export interface BenchOutcome {
  figures: Record<string, unknown>;
  rows: TableRow[];
}

export interface Benchmark {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<BenchOutcome>;
}
