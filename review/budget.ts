/**
 * What a run's budget (`max_spend`, changed live with `hitloop set`) still leaves: every payment a
 * run makes beyond the units it launched (bonuses, gold and screening units) asks here first, so
 * the run's spend (review/spend.ts) stays within it. Amounts in ten-thousandths, as stored.
 */
import type { EntityManager } from '../model/database.ts';
import { Bonus, TaskRun } from '../model/entities.ts';
import { providerFee, runSpend } from './spend.ts';

export interface Budget {
  maxSpend: number;
  /** Spend so far, with the bonuses being paid right now. */
  spent: number;
  left: number;
  /** The provider's fee on a payment of `amount` in this run (counted in spend, so in the budget too). */
  feeOn(amount: number): number;
}

const units = (amount: number): number => Math.round(amount * 10_000);

/**
 * Call first in the transaction that checks the budget and records a payment: on PostgreSQL the
 * run's row is locked until the commit, so a second payment checks only after the first is
 * recorded (two bonuses at once both passed the check). SQLite runs one write transaction at a
 * time already (BEGIN IMMEDIATE, model/sqliteDialect.ts).
 *
 * FOR NO KEY UPDATE, not FOR UPDATE: it queues the budget's users (bonuses, registrations making
 * screening or gold units: registration/standing.ts) and changes of the run's row (a live
 * `max_spend`), but not the rows that only refer to the run (a unit, an agent, a bonus: inserting
 * one takes FOR KEY SHARE on the run's row for its foreign key). With FOR UPDATE, a registration
 * that had locked its workers and then inserted an agent of the run waited for a bonus holding the
 * run, while the bonus waited for one of those workers to insert its own row: a deadlock.
 */
export async function lockRunBudget(em: EntityManager, runId: string): Promise<void> {
  if (em.getPlatform().constructor.name.toLowerCase().includes('postgre')) {
    // MikroORM's lock modes have no FOR NO KEY UPDATE. In the caller's transaction (the lock lasts until its commit).
    await em.getConnection().execute('select id from task_run where id = ? for no key update', [runId], 'all', em.getTransactionContext());
  }
}

/** The run's budget, or null when it has none. */
export async function runBudget(em: EntityManager, runId: string): Promise<Budget | null> {
  const run = await em.findOne(TaskRun, runId, { fields: ['maxSpend', 'config'] });
  const launchedWith = (run?.config as { max_spend?: unknown } | undefined)?.max_spend;
  const maxSpend = run?.maxSpend ?? (typeof launchedWith === 'number' ? launchedWith : null);
  if (maxSpend === null) return null;
  const feeOn = (amount: number): number => providerFee(run!.config, amount);
  const pending = await em.find(Bonus, { taskRun: runId, status: 'pending' }, { fields: ['amount'] });
  const pendingAmount = pending.reduce((sum, b) => sum + units(Number(b.amount)), 0) / 10_000;
  const spent = (units(await runSpend(em, runId)) + units(pendingAmount + feeOn(pendingAmount))) / 10_000;
  return { maxSpend: Number(maxSpend), spent, left: Math.max(0, units(Number(maxSpend)) - units(spent)) / 10_000, feeOn };
}

/** What paying `amount` adds to the run's spend: the amount and the provider's fee on it. */
export const paymentCost = (budget: Budget, amount: number): number => (units(amount) + units(budget.feeOn(amount))) / 10_000;

/** Whether paying `amount` (with the provider's fee on it) fits in the budget (always, without one). */
export const fitsBudget = (budget: Budget | null, amount: number): boolean =>
  budget === null || units(paymentCost(budget, amount)) <= units(budget.left);
