/**
 * The chaos harness in a small configuration: 20 assignments worked by 6 simulated workers over the
 * real gateway protocol, while the hitloop worker, a gateway and the Temporal dev server are each
 * killed with SIGKILL once and restarted. Every invariant of chaos/invariants.ts must hold.
 * The full-size run is `npm run chaos` (200 assignments, 3 kills of each kind). A second, smaller run
 * does the same on the `mturk` provider against a local MTurk, and checks MTurk's records after review
 * and bonuses: no duplicate HIT, no lost submission, no double payment or bonus. A third does the same on
 * the `prolific` provider against the local Prolific (chaos/prolific.ts).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHAOS_OPTIONS, formatReport, runChaos, type ChaosOptions, type ChaosReport } from '../chaos/harness.ts';
import { newSeed } from '../chaos/random.ts';

/** A small chaos run; on failure, everything needed to understand and repeat it: the log, the report, the seed. */
async function smallChaosRun(options: Partial<ChaosOptions>): Promise<ChaosReport> {
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

describe('chaos run (small)', () => {
  it('keeps every invariant while worker, gateway and Temporal are killed and restarted', { timeout: 600_000 }, async () => {
    await smallChaosRun({ assignments: 20, workers: 6 });
  });

  it('keeps every invariant on the mturk provider (local MTurk), and MTurk sees no duplicate HIT, lost submission or double bonus', { timeout: 600_000 }, async () => {
    const report = await smallChaosRun({ provider: 'mturk', assignments: 10, workers: 4 });
    expect(report.invariants.map((i) => i.name)).toEqual(
      expect.arrayContaining(['MTurk: no duplicate HIT', 'MTurk: no lost submission', 'MTurk: no double payment or bonus']),
    );
  });

  it(
    'on the prolific provider: no lost submission and no payment twice, with kills during PUBLISH and a bonus pay call',
    { timeout: 900_000 },
    async () => {
      const report = await smallChaosRun({ provider: 'prolific', bonuses: 2, assignments: 8, workers: 4 });
      expect(report.providerFaults).toEqual([
        "worker killed during the study's PUBLISH (after its launch)",
        'worker killed during a bonus pay call (after its set-up)',
      ]);
      expect(report.invariants.map((i) => i.name)).toEqual(
        expect.arrayContaining([
          'Prolific: no payment made twice',
          'Prolific: every bonus paid exactly once',
          'Prolific: approved participants rewarded',
        ]),
      );
    },
  );
});
