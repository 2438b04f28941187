/**
 * What a run has spent (SPEC §4): the pay of its payable units (launched, assigned, completed,
 * accepted, soft-rejected) plus the bonuses paid on it. Rounded to the 4 decimals amounts are stored with.
 */
import type { EntityManager } from '../model/database.ts';
import { Bonus } from '../model/entities.ts';
import { PAYABLE_UNIT_STATUSES } from '../model/status.ts';

export async function runSpend(em: EntityManager, runId: string): Promise<number> {
  const payable = [...PAYABLE_UNIT_STATUSES];
  const rows: Array<{ pay: number | string | null }> = await em
    .getConnection()
    // In the caller's transaction when there is one: on SQLite a second connection would wait for it for ever.
    .execute(
      `select sum(pay) as pay from unit where task_run_id = ? and status in (${payable.map(() => '?').join(', ')})`,
      [runId, ...payable],
      'all',
      em.getTransactionContext(),
    );
  const bonuses = await em.find(Bonus, { taskRun: runId, status: 'paid' }, { fields: ['amount'] });
  const total = Number(rows[0]?.pay ?? 0) + bonuses.reduce((sum, b) => sum + Number(b.amount), 0);
  return Math.round(total * 10_000) / 10_000;
}
