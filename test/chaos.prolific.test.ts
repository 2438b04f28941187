/**
 * The small chaos run (test/support/chaosRun.ts) on the `prolific` provider against the local Prolific
 * (chaos/prolific.ts): besides the usual kills, the worker is killed during the study's PUBLISH and
 * between a bonus's set-up and its pay call; the fake's ledger shows no payment made twice.
 */
import { describe, expect, it } from 'vitest';
import { smallChaosRun } from './support/chaosRun.ts';

describe('chaos run (small) on prolific', () => {
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
