/**
 * Who may get a unit (docs/design.md §3), checked in this order: blocked -> qualification requirements ->
 * onboarding state -> allowed_concurrent -> maximum_units_per_worker -> a free unit of an
 * assignment the worker has not worked on. Each refusal carries its stable reason code.
 */
import { randomUUID } from 'node:crypto';
import { goldQualificationNames, type TaskRunConfig } from '../config/taskRunConfig.ts';
import { Agent, GrantedQualification, Unit, Worker } from '../model/entities.ts';
import type { EntityManager } from '../model/database.ts';
import { ACTIVE_AGENT_STATUSES, type AgentStatus } from '../model/status.ts';
import { tooManyWrongGolds } from '../qualifications/goldPlan.ts';
import { describeRequirement, firstUnmetRequirement } from '../qualifications/requirements.ts';
import type { RunLimits, UnitRequestResult } from '../workflows/definitions.ts';

type Refusal = Extract<UnitRequestResult, { outcome: 'refused' }>;

/** Agent statuses that count towards `maximum_units_per_worker`: units held, done, or reviewed. */
export const COUNTED_FOR_TASK: readonly AgentStatus[] = [...ACTIVE_AGENT_STATUSES, 'completed', 'approved', 'rejected', 'soft_rejected'];

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

/** The worker's grants by qualification name. */
export async function grantsOf(em: EntityManager, workerId: string): Promise<Map<string, number>> {
  const grants = await em.find(GrantedQualification, { worker: workerId }, { populate: ['qualification'] });
  return new Map(grants.map((g) => [g.qualification.getEntity().name, g.value]));
}

/** Eligible so far, but the worker must pass the run's onboarding first (docs/design.md §3). */
export interface NeedsOnboarding {
  outcome: 'needs_onboarding';
}

export async function decideEligibility(
  em: EntityManager,
  args: { runId: string; config: TaskRunConfig; limits: RunLimits; worker: Worker },
): Promise<Refusal | NeedsOnboarding | null> {
  const { config, limits, worker } = args;
  const grants = await grantsOf(em, worker.id);
  if (worker.blocked) return refuse('blocked', "you are blocked from this provider's tasks");
  if (config.block_qualification && grants.has(config.block_qualification)) {
    return refuse('blocked', 'you are blocked from this task');
  }
  const unmet = firstUnmetRequirement(config.qualifications, grants);
  if (unmet) return refuse('not_qualified', `this task requires ${describeRequirement(unmet)}`);
  if (
    config.gold.enabled &&
    tooManyWrongGolds(config.gold.max_incorrect_golds, grants.get(goldQualificationNames(config).incorrect) ?? 0)
  ) {
    return refuse('not_qualified', 'too many of your answers on check units of this task were wrong');
  }
  if (config.onboarding_qualification) {
    const onboarded = grants.get(config.onboarding_qualification);
    if (onboarded === 0) return refuse('not_qualified', "you did not pass this task's onboarding");
    if (onboarded === undefined) return { outcome: 'needs_onboarding' };
  }
  if (limits.allowed_concurrent > 0) {
    const holding = await em.count(Agent, { worker: worker.id, taskRun: args.runId, status: { $in: [...ACTIVE_AGENT_STATUSES] } });
    if (holding >= limits.allowed_concurrent) {
      return refuse(
        'too_many_concurrent',
        `you already hold ${holding} unit(s) of this run; submit one first (limit ${limits.allowed_concurrent})`,
      );
    }
  }
  if (limits.maximum_units_per_worker > 0) {
    const done = await em.count(Agent, {
      worker: worker.id,
      taskRun: { task: { name: config.task_name } },
      status: { $in: [...COUNTED_FOR_TASK] },
      // Screening and gold units check the worker; the cap is on the work itself.
      unit: { kind: 'normal' },
    });
    if (done >= limits.maximum_units_per_worker) {
      return refuse('max_for_task', `you have done the most units of this task one worker may do (${limits.maximum_units_per_worker})`);
    }
  }
  return null;
}

/**
 * The first launched unit, in data order, of an assignment the worker has no agent in (nor, with
 * `alsoExclude`, a claim on: overlap runs pass the items the worker claimed in the task).
 */
export async function pickUnitFor(em: EntityManager, runId: string, workerId: string, alsoExclude: readonly string[] = []): Promise<Unit | null> {
  const worked = await em.find(Agent, { worker: workerId, taskRun: runId }, { fields: ['assignment'] });
  const exclude = [...new Set([...worked.map((a) => a.assignment.id), ...alsoExclude])];
  return em.findOne(
    Unit,
    { taskRun: runId, status: 'launched', ...(exclude.length > 0 ? { assignment: { $nin: exclude } } : {}) },
    { orderBy: { assignment: { index: 'asc' }, unitIndex: 'asc' } },
  );
}

function refuse(reason: Refusal['reason'], detail: string): Refusal {
  return { outcome: 'refused', reason, detail };
}
