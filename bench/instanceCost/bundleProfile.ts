/**
 * Where a workflow thread's time goes inside a workflow bundle: CPU profile samples whose frames lie
 * in the bundle file, attributed to the bundled module (webpack's `/***\/ "<path>"` headers) that
 * holds the frame's line. bench/profile.ts sees the whole bundle as one package; this splits it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { summarizeProfile } from '../profile.ts';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Bundled modules' first lines (0-based, ascending) and names, from a webpack development bundle. */
function moduleStarts(bundleFile: string): Array<{ line: number; name: string }> {
  const starts: Array<{ line: number; name: string }> = [];
  fs.readFileSync(bundleFile, 'utf8')
    .split('\n')
    .forEach((text, line) => {
      if (text.startsWith('/***/ "')) starts.push({ line, name: text.slice('/***/ "'.length, -1).replace(/^(\.\.\/)*main\//, '') });
    });
  return starts;
}

function moduleAt(starts: Array<{ line: number; name: string }>, line: number): string {
  let lo = 0;
  let hi = starts.length - 1;
  if (hi < 0 || line < starts[0]!.line) return '(webpack runtime)';
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]!.line <= line) lo = mid;
    else hi = mid - 1;
  }
  return starts[lo]!.name;
}

const packageOfModule = (name: string): string => {
  const nm = name.lastIndexOf('node_modules/');
  if (nm < 0) return `hitloop ${name.replace(/^\.\//, '')}`;
  const rest = name.slice(nm + 'node_modules/'.length).split('/');
  return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
};

/** The busiest profile in `dir` (the workflow thread), overall and its bundle time by module and package. */
export function summarizeBundleProfile(dir: string, top = 25): string {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
  const out: string[] = [];
  for (const file of files) {
    const summary = summarizeProfile(file, 'workflow-instance-cost');
    const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const startsOf = new Map<string, Array<{ line: number; name: string }>>();
    const byModule = new Map<string, number>();
    const byPackage = new Map<string, number>();
    let bundleUs = 0;
    profile.samples.forEach((id, i) => {
      const frame = byId.get(id);
      if (!frame?.url || !/workflow-bundles\/.*\.js$/.test(frame.url)) return;
      const bundle = frame.url.replace(/^file:\/\//, '');
      if (!startsOf.has(bundle)) startsOf.set(bundle, fs.existsSync(bundle) ? moduleStarts(bundle) : []);
      const mod = moduleAt(startsOf.get(bundle)!, frame.lineNumber);
      const us = profile.timeDeltas[i] ?? 0;
      bundleUs += us;
      byModule.set(mod, (byModule.get(mod) ?? 0) + us);
      const pkg = mod.startsWith('(') ? mod : packageOfModule(mod);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    });
    if (bundleUs === 0) continue;
    const ms = (us: number): string => (us / 1000).toFixed(1).padStart(8);
    out.push(summary.text, `    workflow bundle self time ${ms(bundleUs).trim()} ms, by package:`);
    for (const [name, us] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 12)) out.push(`      ${ms(us)} ms  ${name}`);
    out.push('    by module:');
    for (const [name, us] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`      ${ms(us)} ms  ${name}`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(summarizeBundleProfile(process.argv[2] ?? '.'));
}
