/**
 * The small chaos run (test/support/chaosRun.ts) on the `mturk` provider against a local MTurk: after
 * review and bonuses, MTurk's own records show no duplicate HIT, no lost submission and no double
 * payment or bonus. Units released after a disconnect, return or timeout are offered again at MTurk
 * (providers/mturk/provider.ts), so the run ends though a leaving worker keeps their assignment.
 */
import { describe, expect, it } from 'vitest';
import { smallChaosRun } from './support/chaosRun.ts';

describe('chaos run (small) on mturk', () => {
  it('keeps every invariant on the mturk provider (local MTurk), and MTurk sees no duplicate HIT, lost submission or double bonus', { timeout: 600_000 }, async () => {
    const report = await smallChaosRun({ provider: 'mturk', assignments: 10, workers: 4 });
    console.info(`chaos on mturk (seed ${report.seed}, ${report.durationS} s): ${report.invariants.filter((i) => i.name.startsWith('MTurk')).map((i) => `${i.name}: ${i.detail}`).join('; ')}; worker-side counts ${JSON.stringify(report.counters)}`);
    expect(report.invariants.map((i) => i.name)).toEqual(
      expect.arrayContaining(['MTurk: no duplicate HIT', 'MTurk: no lost submission', 'MTurk: no double payment or bonus']),
    );
  });
});
