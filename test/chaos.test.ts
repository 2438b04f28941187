/**
 * The chaos harness in a small configuration: 20 assignments worked by 6 simulated workers over the
 * real gateway protocol, while the hitloop worker, a gateway and the Temporal dev server are each
 * killed with SIGKILL once and restarted. Every invariant of chaos/invariants.ts must hold.
 * The full-size run is `npm run chaos` (200 assignments, 3 kills of each kind). The same on the
 * crowd providers' fakes: test/chaos.mturk.test.ts and test/chaos.prolific.test.ts. The timeout
 * outlasts the harness's own (8 minutes, then up to 90 s for workers finishing their last unit), so a
 * stuck run fails with the harness's report rather than vitest's timeout.
 */
import { describe, it } from 'vitest';
import { smallChaosRun } from './support/chaosRun.ts';

describe('chaos run (small)', () => {
  it('keeps every invariant while worker, gateway and Temporal are killed and restarted', { timeout: 900_000 }, async () => {
    await smallChaosRun({ assignments: 20, workers: 6 });
  });
});
