/**
 * What a run's budget (`max_spend`, changed live with `hitloop set`) still leaves: every payment a
 * run makes beyond the units it launched (bonuses, gold and screening units) asks here first, so
 * the run's spend (review/spend.ts) stays within it. Amounts in ten-thousandths, as stored.
 */
import { LockMode } from '@mikro-orm/core';
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
 */
export async function lockRunBudget(em: EntityManager, runId: string): Promise<void> {
  if (em.getPlatform().constructor.name.toLowerCase().includes('postgre')) {
    await em.findOne(TaskRun, runId, { fields: ['id'], lockMode: LockMode.PESSIMISTIC_WRITE });
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

/** Whether `amount` more fits in the budget (always, without one). */
export const fitsBudget = (budget: Budget | null, amount: number): boolean => budget === null || units(amount) <= units(budget.left);
