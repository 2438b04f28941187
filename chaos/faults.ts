/**
 * The faults of a chaos run: which process is killed with SIGKILL, when, and for how long it stays
 * down. All drawn from the seeded random source, so a seed names a run's faults exactly.
 *
 * "When" is a point of the run's progress (completed units), drawn inside the fault's own slice of
 * the run: fault i of F falls in the (i+1)-th of F+1 equal slices, at a random place, plus a random
 * delay of up to 1.5 s. The harness holds new registrations back at the end of a slice until its
 * fault has happened, so every fault strikes while work is in flight, never after the run is over.
 * It counts the units handed out for that (held or submitted), not the completed ones: units
 * already held when the gate closed could otherwise finish the run while an earlier fault's
 * process is still down (a Prolific run of 8 units and 4 workers did, its last fault never struck).
 */
import type { SeededRandom } from './random.ts';

export type FaultKind = 'worker' | 'gateway' | 'temporal';
export const FAULT_KINDS: readonly FaultKind[] = ['worker', 'gateway', 'temporal'];

export interface PlannedFault {
  index: number;
  kind: FaultKind;
  /** For gateway faults: which gateway (0-based). */
  target: number;
  /** Completed units after which the fault is armed. */
  afterCompleted: number;
  /** New registrations wait while this many units are handed out (held or submitted) and the fault has not happened. */
  holdAtHandedOut: number;
  delayMs: number;
  /** Time the process stays dead before it is started again. */
  downMs: number;
}

export interface FaultPlanOptions {
  units: number;
  killsPerKind: number;
  gateways: number;
  /** Kinds to inject (default all three; the direct mode has no gateway to kill). */
  kinds?: readonly FaultKind[];
  /** Longest time a killed process stays down (default 4 s). */
  maxDownMs?: number;
}

export function planFaults(rng: SeededRandom, o: FaultPlanOptions): PlannedFault[] {
  const kinds = o.kinds ?? FAULT_KINDS;
  const sequence = rng.shuffle(kinds.flatMap((kind) => Array.from({ length: o.killsPerKind }, () => kind)));
  const slices = sequence.length + 1;
  return sequence.map((kind, index) => {
    const sliceStart = index / slices;
    const sliceEnd = (index + 1) / slices;
    const at = sliceStart + (sliceEnd - sliceStart) * rng.between(0.1, 0.7);
    return {
      index,
      kind,
      target: kind === 'gateway' ? rng.int(0, Math.max(0, o.gateways - 1)) : 0,
      afterCompleted: Math.floor(o.units * at),
      holdAtHandedOut: Math.max(Math.floor(o.units * at) + 1, Math.floor(o.units * sliceEnd)),
      delayMs: rng.int(0, 1500),
      downMs: rng.int(300, Math.max(300, o.maxDownMs ?? 4000)),
    };
  });
}

export interface InjectedFault extends PlannedFault {
  /** When the process was killed, and the run's completed units then. */
  killedAt: string;
  completedAtKill: number;
  pid: number | undefined;
  /** Until the restarted process was ready again (ms after the kill). */
  backAfterMs: number;
}

export function describeFault(f: PlannedFault | InjectedFault): string {
  const what = f.kind === 'gateway' ? `gateway-${f.target + 1}` : f.kind === 'worker' ? 'worker' : 'Temporal dev server';
  const done = 'killedAt' in f ? ` at ${f.killedAt} (pid ${f.pid ?? '?'}, ${f.completedAtKill} units completed), back after ${(f.backAfterMs / 1000).toFixed(1)} s` : '';
  return `#${f.index + 1} kill -9 ${what} after ${f.afterCompleted} completed units + ${f.delayMs} ms, down ${f.downMs} ms${done}`;
}
