/**
 * What a run has spent (docs/design.md §4): the pay of its payable units (launched, assigned, completed,
 * accepted, soft-rejected) plus the bonuses paid on it, plus the provider's service fee on both
 * (`CrowdProvider.serviceFee`, e.g. Prolific's third). Rounded to the 4 decimals amounts are stored with.
 */
import type { EntityManager } from '../model/database.ts';
import { Bonus, TaskRun } from '../model/entities.ts';
import { PAYABLE_UNIT_STATUSES } from '../model/status.ts';
import { providers } from '../registry/builtins.ts';

const round4 = (n: number) => Math.round(n * 10_000) / 10_000;

/** The fee the run's provider charges on `amount`; 0 for providers without one. */
export function providerFee(config: unknown, amount: number): number {
  const { type, ...options } = ((config as { provider?: { type?: string } }).provider ?? {}) as { type?: string };
  if (!type || !providers.has(type)) return 0;
  return round4(providers.get(type).serviceFee?.(amount, options) ?? 0);
}

export async function runFee(em: EntityManager, runId: string, amount: number): Promise<number> {
  const run = await em.findOne(TaskRun, runId, { fields: ['config'] });
  return run ? providerFee(run.config, amount) : 0;
}

/** What a run spent, and the provider's fee included in it. */
export interface RunSpend {
  spend: number;
  serviceFee: number;
}

export async function runSpendWithFee(em: EntityManager, runId: string): Promise<RunSpend> {
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
  const serviceFee = await runFee(em, runId, total);
  return { spend: round4(total + serviceFee), serviceFee };
}

export async function runSpend(em: EntityManager, runId: string): Promise<number> {
  return (await runSpendWithFee(em, runId)).spend;
}
