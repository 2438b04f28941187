/**
 * What a run has spent (SPEC §4): the pay of its payable units (launched, assigned, completed,
 * accepted, soft-rejected) plus the bonuses paid on it, plus the provider's fee on both (MTurk
 * charges 20 % on top). Rounded to the 4 decimals amounts are stored with.
 */
import type { EntityManager } from '../model/database.ts';
import { Bonus, TaskRun } from '../model/entities.ts';
import { PAYABLE_UNIT_STATUSES } from '../model/status.ts';
import { providers } from '../registry/builtins.ts';

/** `amount` paid through the run's provider, with the provider's fee added and rounded to 4 decimals. */
export function withProviderFee(run: Pick<TaskRun, 'providerType' | 'config'>, amount: number): number {
  const provider = providers.has(run.providerType) ? providers.get(run.providerType) : undefined;
  const { type: _type, ...options } = ((run.config as Record<string, unknown>).provider ?? {}) as Record<string, unknown>;
  const fee = provider?.serviceFee?.(amount, options) ?? 0;
  return Math.round((amount + fee) * 10_000) / 10_000;
}

export async function runSpend(em: EntityManager, runId: string): Promise<number> {
  const payable = [...PAYABLE_UNIT_STATUSES];
  const rows: Array<{ pay: number | string | null }> = await em
    .getConnection()
    .execute(`select sum(pay) as pay from unit where task_run_id = ? and status in (${payable.map(() => '?').join(', ')})`, [
      runId,
      ...payable,
    ]);
  const bonuses = await em.find(Bonus, { taskRun: runId, status: 'paid' }, { fields: ['amount'] });
  const total = Number(rows[0]?.pay ?? 0) + bonuses.reduce((sum, b) => sum + Number(b.amount), 0);
  const run = await em.findOne(TaskRun, runId, { fields: ['providerType', 'config'] });
  return run ? withProviderFee(run, total) : Math.round(total * 10_000) / 10_000;
}
