/** The progress line of `hitloop wait`: units done / total, a bar, rate and ETA. */
import type { RunStatusReport } from '../operator/api.ts';

const BAR_WIDTH = 30;

export const doneUnits = (s: RunStatusReport): number => s.units.completed + s.units.accepted + s.units.rejected + s.units.soft_rejected;

/** Rate is measured from what this meter has seen, not from units finished before it started. */
export function createProgressMeter(now: () => number = Date.now) {
  let first: { at: number; done: number } | undefined;
  return (s: RunStatusReport): string => {
    const stuck = s.stuck ? `  ${s.stuck}` : '';
    const done = doneUnits(s);
    if (s.status === 'cancelled' || s.status === 'failed') {
      // No bar: a bar over the units not expired would read "full" for a run that was stopped.
      const why = s.failureReason ?? s.endReason;
      return `${s.status}${why ? ` (${why})` : ''}: ${done} of ${s.totalUnits} units done, ${s.units.expired} expired`;
    }
    if (s.totalUnits === 0) return `preparing units ...  (${s.status})${stuck}`;
    const at = now();
    first ??= { at, done };
    const total = Math.max(1, s.totalUnits - s.units.expired);
    const filled = Math.min(BAR_WIDTH, Math.round((done / total) * BAR_WIDTH));
    const minutes = (at - first.at) / 60_000;
    const rate = minutes > 0 ? (done - first.done) / minutes : 0;
    const left = Math.max(0, total - done);
    const eta = rate > 0 ? formatDuration((left / rate) * 60) : '--';
    return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total} units  ${rate.toFixed(1)}/min  ETA ${eta}  (${s.status})${stuck}`;
  };
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
