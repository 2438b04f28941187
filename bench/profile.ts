/**
 * Reading `node --cpu-prof` profiles: the functions with the most self time, and the same by
 * package (node_modules/<pkg>, hitloop's own folders, node internals), per profiled thread.
 * `node bench/profile.ts <dir-or-file>...` prints the summary of profiles already written.
 */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  /** Which process the profile came from (its directory: worker, gateway). */
  process: string;
  totalMs: number;
  idleMs: number;
  topFunctions: Array<{ name: string; where: string; selfMs: number; percentOfBusy: number }>;
  byPackage: Array<{ name: string; selfMs: number; percentOfBusy: number }>;
  text: string;
}

const IDLE = new Set(['(idle)', '(program)']);

function packageOf(url: string): string {
  if (!url) return '(native / V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return 'node internals';
  const marker = url.indexOf('/work/main/');
  if (marker >= 0) return `hitloop ${url.slice(marker + '/work/main/'.length).split('/')[0]}/`;
  if (url.includes('workflow-bundles') || url.includes('workflows-')) return 'hitloop workflow bundle';
  return path.basename(url);
}

export function summarizeProfile(file: string, processName: string, top = 15): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const fnTotals = new Map<string, { name: string; where: string; us: number }>();
  const pkgTotals = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    totalUs += us;
    if (IDLE.has(frame.functionName)) {
      idleUs += us;
      continue;
    }
    const name = frame.functionName || '(anonymous)';
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = fnTotals.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    fnTotals.set(key, entry);
    const pkg = frame.functionName === '(garbage collector)' ? '(garbage collector)' : packageOf(frame.url);
    pkgTotals.set(pkg, (pkgTotals.get(pkg) ?? 0) + us);
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  const pct = (us: number): number => Math.round((us / busyUs) * 1000) / 10;
  const ms = (us: number): number => Math.round(us / 100) / 10;
  const topFunctions = [...fnTotals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((f) => ({ name: f.name, where: f.where, selfMs: ms(f.us), percentOfBusy: pct(f.us) }));
  const byPackage = [...pkgTotals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([name, us]) => ({ name, selfMs: ms(us), percentOfBusy: pct(us) }));
  const lines = [
    `  profile ${processName} ${path.basename(file)}: ${ms(totalUs)} ms sampled, ${ms(busyUs)} ms busy (${Math.round((busyUs / Math.max(1, totalUs)) * 100)}%)`,
    '    by package (self time, % of busy):',
    ...byPackage.map((p) => `      ${p.percentOfBusy.toFixed(1).padStart(5)}%  ${String(p.selfMs).padStart(9)} ms  ${p.name}`),
    '    top functions:',
    ...topFunctions.map((f) => `      ${f.percentOfBusy.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(9)} ms  ${f.name}  ${f.where}`),
  ];
  return { file, process: processName, totalMs: ms(totalUs), idleMs: ms(idleUs), topFunctions, byPackage, text: `${lines.join('\n')}\n` };
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const marker = url.indexOf('/work/main/');
  if (marker >= 0) return url.slice(marker + '/work/main/'.length);
  return url.replace(/^file:\/\//, '');
}

/** Every profile under `dir` (one sub-directory per process kind), busiest first; tiny ones skipped. */
export function summarizeProfiles(dir: string): ProfileSummary[] {
  if (!fs.existsSync(dir)) return [];
  const out: ProfileSummary[] = [];
  for (const proc of fs.readdirSync(dir)) {
    const sub = path.join(dir, proc);
    if (!fs.statSync(sub).isDirectory()) continue;
    for (const f of fs.readdirSync(sub).filter((n) => n.endsWith('.cpuprofile'))) {
      const s = summarizeProfile(path.join(sub, f), proc);
      if (s.totalMs - s.idleMs > 200) out.push(s);
    }
  }
  return out.sort((a, b) => b.totalMs - b.idleMs - (a.totalMs - a.idleMs));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const targets = process.argv.slice(2);
  if (targets.length === 0) {
    process.stderr.write('usage: node bench/profile.ts <profiles-dir | file.cpuprofile>...\n');
    process.exit(2);
  }
  for (const t of targets) {
    const summaries = fs.statSync(t).isDirectory() ? summarizeProfiles(t) : [summarizeProfile(t, path.basename(path.dirname(t)))];
    for (const s of summaries) process.stdout.write(s.text);
  }
}
