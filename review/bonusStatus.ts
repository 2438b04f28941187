/**
 * What became of a run's bonuses, for `hitloop review bonus <runId> --status`: paid, pending (asked
 * for, not yet confirmed by the provider), or parked. A provider parks a bonus (records a
 * `bonusParked` provider call under the bonus's request key) when, after a crash, it cannot tell
 * whether its pay call went through: paying again could pay twice, so the operator checks first.
 */
import type { Database } from '../model/database.ts';
import { Bonus, ProviderCall } from '../model/entities.ts';

export interface BonusState {
  requestKey: string;
  unitId: string;
  amount: number;
  status: 'paid' | 'pending' | 'parked';
  providerRef: string | null;
  /** What the provider recorded when it parked the bonus (its payment id, what it read back). */
  parked: Record<string, unknown> | null;
}

export async function bonusStates(db: Database, runId: string): Promise<BonusState[]> {
  const em = db.em();
  const bonuses = await em.find(Bonus, { taskRun: runId }, { orderBy: { createdAt: 'asc' } });
  const parked = new Map(
    (await em.find(ProviderCall, { operation: 'bonusParked', requestKey: { $in: bonuses.map((b) => b.requestKey) } })).map((c) => [
      c.requestKey,
      c.payload as Record<string, unknown>,
    ]),
  );
  return bonuses.map((b) => ({
    requestKey: b.requestKey,
    unitId: b.unit.id,
    amount: Number(b.amount),
    status: b.status === 'paid' ? 'paid' : parked.has(b.requestKey) ? 'parked' : 'pending',
    providerRef: b.providerRef ?? null,
    parked: parked.get(b.requestKey) ?? null,
  }));
}
