/**
 * The small chaos run (test/support/chaosRun.ts) on the `prolific` provider against the local Prolific
 * (chaos/prolific.ts): besides the usual kills of worker, gateway and Temporal, the worker is killed
 * during the study's PUBLISH and between a bonus's set-up and its pay call; the fake's ledger shows no
 * payment made twice, every bonus paid once and every approved participant rewarded.
 *
 * It was opt-in for a while after a CI-like run hung with two agents `in_task` on a live gateway whose
 * simulated workers never submitted. The harness left a killed worker process dead when its restart
 * was not ready in time (a loaded host; seen twice here): nothing recorded the submissions any more,
 * so agents stayed `in_task`. Restarts now try again until the process is up (chaos/harness.ts
 * startAgain). Two more harness defects fitting the picture are fixed as well: a simulated
 * worker that stopped on an unexpected error left its socket open, so its agent stayed bound to a live
 * gateway, never in a reconnect window, for the whole assignment duration (15 min, beyond the run's
 * timeout); it now closes its socket however it stops (chaos/simulatedWorker.ts). And the check that
 * every workflow closed read Temporal's lagging visibility list right after the run ended; it now
 * waits a bounded while for a workflow still listed as running (chaos/invariants.ts).
 */
import { describe, expect, it } from 'vitest';
import { smallChaosRun } from './support/chaosRun.ts';

describe('chaos run (small) on prolific', () => {
  it('on the prolific provider: no lost submission and no payment twice, with kills during PUBLISH and a bonus pay call', { timeout: 900_000 }, async () => {
    const report = await smallChaosRun({ provider: 'prolific', bonuses: 2, assignments: 8, workers: 4 });
    expect(report.providerFaults).toEqual([
      "worker killed during the study's PUBLISH (after its launch)",
      'worker killed during a bonus pay call (after its set-up)',
    ]);
    expect(report.invariants.map((i) => i.name)).toEqual(
      expect.arrayContaining(['Prolific: no payment made twice', 'Prolific: every bonus paid exactly once', 'Prolific: approved participants rewarded']),
    );
  });
});
