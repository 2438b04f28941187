/**
 * Database reads of a registration besides the batch's own (./batch.ts): workers made on first
 * sight, and what the screening and gold rules of ./decision.ts decide on, read per registration
 * (only runs with screening or gold units), inside the registration's transaction.
 */
import { LockMode } from '@mikro-orm/core';
import { randomUUID } from 'node:crypto';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import type { EntityManager } from '../model/database.ts';
import { Agent, TaskRun, Unit, Worker } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, SUBMITTED_AGENT_STATUSES } from '../model/status.ts';
import { fitsBudget, lockRunBudget, runBudget } from '../review/budget.ts';
import type { Grants } from '../qualifications/requirements.ts';
import { usesQualifyingUnits, type QualifyingStanding } from './decision.ts';

export async function findOrCreateWorker(em: EntityManager, provider: string, providerWorkerId: string): Promise<Worker> {
  const [worker] = await findOrCreateWorkers(em, [{ provider, providerWorkerId }]);
  return worker!;
}

/**
 * The workers, made on first sight; with `lock` (PostgreSQL), locked in id order (two transactions locking some
 * of the same workers wait for each other instead of deadlocking). Two registrations of a new worker
 * may race: the unique (provider, provider_worker_id) lets one insert win, and both read that row.
 */
export async function findOrCreateWorkers(
  em: EntityManager,
  refs: ReadonlyArray<{ provider: string; providerWorkerId: string }>,
  lock = false,
): Promise<Worker[]> {
  const key = (w: { provider: string; providerWorkerId: string }): string => `${w.provider}\0${w.providerWorkerId}`;
  const wanted = new Map(refs.map((r) => [key(r), { provider: r.provider, providerWorkerId: r.providerWorkerId }]));
  const read = (pairs: Array<{ provider: string; providerWorkerId: string }>) =>
    em.find(Worker, { $or: pairs }, { orderBy: { id: 'asc' }, ...(lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {}) });
  const found = await read([...wanted.values()]);
  for (const w of found) wanted.delete(key(w));
  if (wanted.size === 0) return found;
  const missing = [...wanted.values()];
  const now = new Date();
  await em.insertMany(
    Worker,
    missing.map((pair) => ({ id: `w-${randomUUID()}`, ...pair, blocked: false, createdAt: now })),
    { onConflictAction: 'ignore', onConflictFields: ['provider', 'providerWorkerId'] } as never,
  );
  return [...found, ...(await read(missing))];
}

/**
 * For a run with screening or gold units: lock its budget (review/budget.ts `lockRunBudget`) so that
 * the check `qualifyingStanding` makes and the unit it allows are one step, as a bonus's check and
 * record are (review/store.ts `payBonus`): a bonus and a gold unit that each fit in what `max_spend`
 * leaves, but not together, are never both paid. Taken whether or not the run has a budget now: one
 * may be set live (`hitloop set <runId> max_spend=...`), and that change waits for this lock too.
 *
 * Call FIRST in the registration transaction. The lock order is: the run's row, then the batch's
 * workers (in id order), then its free units (./batch.ts), then what the batch writes. A bonus takes
 * the run's row first too, and then only refers to its agent, unit and worker (FOR KEY SHARE, through
 * its foreign keys), so whichever of the two waits for the run's row holds nothing the other needs.
 * Taken after the workers instead, it deadlocks with a bonus for one of them: the bonus holds the run
 * and waits for the worker, the batch holds the worker and waits for the run.
 */
export async function lockBudgetForQualifyingUnits(em: EntityManager, run: { runId: string; config: TaskRunConfig }): Promise<void> {
  if (usesQualifyingUnits(run.config)) await lockRunBudget(em, run.runId);
}

/**
 * What the screening and gold rules decide on. The budget is exact only under
 * `lockBudgetForQualifyingUnits`, taken at the start of the transaction.
 */
export async function qualifyingStanding(
  em: EntityManager,
  args: { runId: string; config: TaskRunConfig; workerId: string; grants: Grants },
): Promise<QualifyingStanding> {
  const { runId, config, workerId } = args;
  const held = (kind: 'screening' | 'gold') =>
    em.count(Agent, { worker: workerId, taskRun: runId, status: { $in: [...ACTIVE_AGENT_STATUSES] }, unit: { kind } });
  const screening = config.screening.enabled;
  const gold = config.gold.enabled;
  const run = await em.findOneOrFail(TaskRun, runId, { fields: ['reward'] });
  return {
    grants: args.grants,
    screeningHeld: screening ? await held('screening') : 0,
    screeningAssignedInRun:
      screening && config.screening.max_screening_units > 0 ? await em.count(Unit, { taskRun: runId, kind: 'screening', status: 'assigned' }) : 0,
    goldHeld: gold ? await held('gold') : 0,
    realSubmittedInTask: gold
      ? await em.count(Agent, {
          worker: workerId,
          taskRun: { task: { name: config.task_name } },
          status: { $in: [...SUBMITTED_AGENT_STATUSES] },
          unit: { kind: 'normal' },
        })
      : 0,
    budgetFitsOneMore: fitsBudget(await runBudget(em, runId), Number(run.reward)),
  };
}
