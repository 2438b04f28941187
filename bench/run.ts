/**
 * `npm run bench [-- name...] [--quick] [--profile] [--save-histories]`: runs the benchmarks (all, or
 * those named), prints each one's figures as it goes and a table at the end, and writes
 * bench/results/<name>.json with the machine's description.
 *
 *   --quick            smaller sizes, to check the benchmarks themselves
 *   --profile          run worker and gateway under `node --cpu-prof` and print their top functions
 *   --save-histories   keep the runs' workflow histories as replay fixtures (test/fixtures/histories)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitOnSignals } from '../chaos/managedProcess.ts';
import { REPO_ROOT } from '../chaos/stack.ts';
import type { Benchmark, BenchContext, TableRow } from './benchmark.ts';
import { assignmentBenchmark } from './benchmarks/assignment.ts';
import { connectionsBenchmark } from './benchmarks/connections.ts';
import { endToEndBenchmark } from './benchmarks/endToEnd.ts';
import { liveActionsBenchmark } from './benchmarks/liveActions.ts';
import { overlapBenchmark } from './benchmarks/overlap.ts';
import { scaleBenchmark } from './benchmarks/scale.ts';
import { setSaveHistories } from './histories.ts';
import { summarizeProfiles } from './profile.ts';
import { printTable } from './table.ts';

export const BENCHMARKS: readonly Benchmark[] = [
  assignmentBenchmark,
  liveActionsBenchmark,
  endToEndBenchmark,
  scaleBenchmark,
  connectionsBenchmark,
  overlapBenchmark,
];
export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

async function main(argv: string[]): Promise<number> {
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const known = new Set(['--quick', '--profile', '--save-histories']);
  const unknownFlag = [...flags].find((f) => !known.has(f));
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknownFlag || unknown.length > 0) {
    process.stderr.write(
      `bench: unknown ${unknownFlag ? `option ${unknownFlag}` : `benchmark ${unknown.join(', ')}`}. ` +
        `Benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}; options: ${[...known].join(', ')}\n`,
    );
    return 2;
  }
  setSaveHistories(flags.has('--save-histories'));
  const selected = names.length ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS;
  const rows: TableRow[] = [];
  const failures: string[] = [];
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-bench-'));
  process.stdout.write(`hitloop benchmarks: ${selected.map((b) => b.name).join(', ')} (logs and profiles in ${workRoot})\n`);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  for (const bench of selected) {
    const ctx: BenchContext = {
      workDir: path.join(workRoot, bench.name),
      profile: flags.has('--profile'),
      quick: flags.has('--quick'),
      log: (line) => process.stdout.write(`  [${bench.name}] ${line}\n`),
    };
    process.stdout.write(`\n== ${bench.name}: ${bench.title}\n`);
    const startedAt = new Date();
    try {
      const outcome = await bench.run(ctx);
      const profiles = ctx.profile ? summarizeProfiles(path.join(ctx.workDir, 'profiles')) : undefined;
      if (profiles) for (const p of profiles) process.stdout.write(p.text);
      const result = {
        benchmark: bench.name,
        title: bench.title,
        startedAt: startedAt.toISOString(),
        durationS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
        quick: ctx.quick,
        profiled: ctx.profile,
        machine: ctx.machine,
        figures: outcome.figures,
        ...(profiles ? { profiles: profiles.map(({ text: _text, ...p }) => p) } : {}),
      };
      // Quick and profiled runs do not overwrite the figures of a plain full run.
      const file = path.join(RESULTS_DIR, `${bench.name}${ctx.quick ? '.quick' : ''}${ctx.profile ? '.profiled' : ''}.json`);
      fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      rows.push(...outcome.rows);
      process.stdout.write(`  -> ${path.relative(REPO_ROOT, file)}\n`);
    } catch (err) {
      failures.push(bench.name);
      rows.push({ benchmark: bench.name, metric: 'FAILED', value: (err as Error).message.split('\n')[0]! });
      process.stderr.write(`  [${bench.name}] FAILED: ${(err as Error).stack ?? String(err)}\n  logs: ${ctx.workDir}\n`);
    }
  }
  process.stdout.write('\n');
  printTable(rows);
  if (failures.length) process.stderr.write(`\n${failures.length} benchmark(s) failed: ${failures.join(', ')}; rerun one with \`npm run bench -- ${failures[0]}\`\n`);
  return failures.length ? 1 : 0;
}

exitOnSignals();
// Exit explicitly: a failed benchmark may leave a socket or timer that would keep the process alive.
process.exit(await main(process.argv.slice(2)));
