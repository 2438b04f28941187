/** The results table printed at the end of `npm run bench`. */
import type { TableRow } from './benchmark.ts';

export function printTable(rows: readonly TableRow[], out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const header: TableRow = { benchmark: 'benchmark', metric: 'metric', value: 'result', note: 'note' };
  const all = [header, ...rows];
  const width = (key: keyof TableRow): number => Math.max(...all.map((r) => (r[key] ?? '').length));
  const w = { benchmark: width('benchmark'), metric: width('metric'), value: width('value') };
  const line = (r: TableRow): string => `| ${r.benchmark.padEnd(w.benchmark)} | ${r.metric.padEnd(w.metric)} | ${r.value.padEnd(w.value)} | ${r.note ?? ''}\n`;
  out(line(header));
  out(`|${'-'.repeat(w.benchmark + 2)}|${'-'.repeat(w.metric + 2)}|${'-'.repeat(w.value + 2)}|${'-'.repeat(10)}\n`);
  for (const r of rows) out(line(r));
}
