/**
 * The database reads of a registration: the worker (made on first sight), the facts the rules of
 * ./decision.ts decide on, and the free unit. Read inside the registration's transaction.
 */
import { randomUUID } from 'node:crypto';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import type { EntityManager } from '../model/database.ts';
import { Agent, TaskRun, Unit, Worker } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, SUBMITTED_AGENT_STATUSES } from '../model/status.ts';
import { fitsBudget, runBudget } from '../review/budget.ts';
import type { RunLimits } from '../workflows/definitions.ts';
import { COUNTED_FOR_TASK, type QualifyingStanding, type WorkerStanding } from './decision.ts';

export async function findOrCreateWorker(em: EntityManager, provider: string, providerWorkerId: string): Promise<Worker> {
  const existing = await em.findOne(Worker, { provider, providerWorkerId });
  if (existing) return existing;
  // Two registrations of a new worker may race: the unique (provider, provider_worker_id) lets one win.
  await em.insert(Worker, { id: `w-${randomUUID()}`, provider, providerWorkerId, blocked: false, createdAt: new Date() }, {
    onConflictAction: 'ignore',
    onConflictFields: ['provider', 'providerWorkerId'],
  } as never);
  return em.findOneOrFail(Worker, { provider, providerWorkerId });
}

/** What eligibility decides on; a count is read only when its limit is set. */
export async function workerStanding(
  em: EntityManager,
  args: { runId: string; config: TaskRunConfig; limits: RunLimits; worker: Worker; grants: Map<string, number> },
): Promise<WorkerStanding> {
  const { worker, limits } = args;
  const holdingInRun =
    limits.allowed_concurrent > 0
      ? await em.count(Agent, { worker: worker.id, taskRun: args.runId, status: { $in: [...ACTIVE_AGENT_STATUSES] } })
      : 0;
  const doneInTask =
    limits.maximum_units_per_worker > 0
      ? await em.count(Agent, {
          worker: worker.id,
          taskRun: { task: { name: args.config.task_name } },
          status: { $in: [...COUNTED_FOR_TASK] },
          // Screening and gold units check the worker; the cap is on the work itself.
          unit: { kind: 'normal' },
        })
      : 0;
  return { blocked: worker.blocked, grants: args.grants, holdingInRun, doneInTask };
}

/** What the screening and gold rules decide on. */
export async function qualifyingStanding(
  em: EntityManager,
  args: { runId: string; config: TaskRunConfig; workerId: string; grants: Map<string, number> },
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

/**
 * The first launched unit, in data order, of an assignment the worker has no agent in (nor, with
 * `alsoExclude`, a claim on: overlap runs pass the items the worker claimed in the task).
 */
export async function freeUnitFor(em: EntityManager, runId: string, workerId: string, alsoExclude: readonly string[] = []): Promise<Unit | null> {
  const worked = await em.find(Agent, { worker: workerId, taskRun: runId }, { fields: ['assignment'] });
  const exclude = [...new Set([...worked.map((a) => a.assignment.id), ...alsoExclude])];
  return em.findOne(
    Unit,
    { taskRun: runId, status: 'launched', ...(exclude.length > 0 ? { assignment: { $nin: exclude } } : {}) },
    { orderBy: { assignment: { index: 'asc' }, unitIndex: 'asc' } },
  );
}
