/**
 * `npm run chaos -- [--seed N] [--assignments 200] [--workers 24] [--kills 3] [--gateways 2]
 *   [--mode gateway|direct] [--dialect postgresql|sqlite] [--provider mock|mturk] [--max-down-seconds 4] [--reconnect-window 30]
 *   [--update-limit 400] [--timeout-minutes 30] [--save-histories]`
 *
 * Runs the chaos harness (chaos/harness.ts) and prints the seed, the faults injected and the
 * invariants; exits 1 with the command to rerun the same run when an invariant fails. The full
 * report is also written to bench/results/chaos.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_CHAOS_OPTIONS, formatReport, runChaos, type ChaosOptions } from '../chaos/harness.ts';
import { newSeed } from '../chaos/random.ts';
import { exitOnSignals } from '../chaos/managedProcess.ts';
import { REPO_ROOT } from '../chaos/stack.ts';

function parseArgs(argv: string[]): ChaosOptions {
  const o: ChaosOptions = { ...DEFAULT_CHAOS_OPTIONS, seed: newSeed(), log: (line) => process.stdout.write(`${line}\n`) };
  const int = (flag: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs a whole number >= ${min}, got ${JSON.stringify(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--seed': o.seed = int(flag, value(), 0); break;
      case '--assignments': o.assignments = int(flag, value(), 1); break;
      case '--workers': o.workers = int(flag, value(), 1); break;
      case '--kills': o.killsPerKind = int(flag, value(), 0); break;
      case '--gateways': o.gateways = int(flag, value(), 1); break;
      case '--timeout-minutes': o.timeoutMs = int(flag, value(), 1) * 60_000; break;
      case '--update-limit': o.updateLimit = int(flag, value(), 10); break;
      case '--reconnect-window': o.reconnectWindowSeconds = int(flag, value(), 1); break;
      case '--max-down-seconds': o.maxDownMs = int(flag, value(), 1) * 1000; break;
      case '--save-histories': o.saveHistories = true; break;
      case '--mode': {
        const m = value();
        if (m !== 'gateway' && m !== 'direct') throw new Error(`--mode is gateway or direct, got ${JSON.stringify(m)}`);
        o.mode = m;
        break;
      }
      case '--provider': {
        const p = value();
        if (p !== 'mock' && p !== 'mturk' && p !== 'prolific') throw new Error(`--provider is mock, mturk (a local MTurk) or prolific (a local Prolific), got ${JSON.stringify(p)}`);
        o.provider = p;
        break;
      }
      case '--bonuses': o.bonuses = int(flag, value(), 0); break;
      case '--dialect': {
        const d = value();
        if (d !== 'postgresql' && d !== 'sqlite') throw new Error(`--dialect is postgresql or sqlite, got ${JSON.stringify(d)}`);
        o.dialect = d;
        break;
      }
      default:
        throw new Error(`unknown option ${flag}; see the comment at the top of bench/chaos.ts`);
    }
  }
  return o;
}

exitOnSignals();
let options: ChaosOptions;
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).message}\n`);
  process.exit(2);
}
const report = await runChaos(options);
process.stdout.write(formatReport(report));
const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, 'chaos.json'), `${JSON.stringify(report, null, 2)}\n`);
// Leftover sockets and timers of the simulated workers must not keep the process alive.
process.exit(report.passed ? 0 : 1);
