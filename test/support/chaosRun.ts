/**
 * The chaos harness (chaos/harness.ts) in a small configuration for the test suite: one kill of each
 * kind (worker, gateway, Temporal), and every invariant must hold. Each provider's run has a test file
 * of its own, so the runs go in parallel with the rest of the suite.
 */
import { expect } from 'vitest';
import { DEFAULT_CHAOS_OPTIONS, formatReport, runChaos, type ChaosOptions, type ChaosReport } from '../../chaos/harness.ts';
import { newSeed } from '../../chaos/random.ts';

/** A small chaos run; on failure, everything needed to understand and repeat it: the log, the report, the seed. */
export async function smallChaosRun(options: Partial<ChaosOptions>): Promise<ChaosReport> {
  const seed = Number(process.env.HITLOOP_CHAOS_SEED) || newSeed();
  const lines: string[] = [];
  const report = await runChaos({
    ...DEFAULT_CHAOS_OPTIONS,
    seed,
    killsPerKind: 1,
    gateways: 2,
    timeoutMs: 8 * 60_000,
    ...options,
    log: (line) => lines.push(line),
  });
  if (!report.passed) console.error(`${lines.join('\n')}\n${formatReport(report)}\nrepeat in the test suite with HITLOOP_CHAOS_SEED=${seed}`);
  expect(report.faults.map((f) => f.kind).sort()).toEqual(['gateway', 'temporal', 'worker']);
  expect(report.invariants.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}; ${i.violations.join('; ')}`)).toEqual([]);
  expect(report.acknowledgedSubmissions).toBeGreaterThan(0);
  expect(report.passed).toBe(true);
  return report;
}
