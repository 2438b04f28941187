/**
 * Guarded status changes: the one way activities move a unit, agent, task run or onboarding agent
 * to a new status. Each is a single `UPDATE ... SET status = :to WHERE id = :id AND status IN
 * (statuses that may become :to)`, so two racing writers cannot both win, and a retried activity
 * changes nothing the second time:
 *   - returns true when this call moved the row;
 *   - returns false when the row already is in `to` (the patch is then NOT applied again);
 *   - throws IllegalTransitionError (naming both statuses) when the row is in a status that may not
 *     become `to`, and RowNotFoundError when there is no such row.
 * An entity of that row already loaded in `em` gets the new status and patch; its other unflushed
 * changes are kept.
 */
import { raw, type EntityData, type EntityName } from '@mikro-orm/core';
import type { EntityManager } from './database.ts';
import { Agent, OnboardingAgent, TaskRun, Unit } from './entities.ts';
import {
  IllegalTransitionError,
  canTransition,
  statusesThatMayBecome,
  type AgentStatus,
  type OnboardingAgentStatus,
  type StatusMachine,
  type TaskRunStatus,
  type UnitStatus,
} from './status.ts';

export { IllegalTransitionError };

export class RowNotFoundError extends Error {
  readonly machine: StatusMachine;
  readonly id: string;
  constructor(machine: StatusMachine, id: string, to: string) {
    super(`cannot move ${machine} '${id}' to '${to}': there is no ${machine} with that id`);
    this.name = 'RowNotFoundError';
    this.machine = machine;
    this.id = id;
  }
}

/** Columns to set together with the status (timestamps, worker, ...). */
export type TransitionPatch<T> = Omit<EntityData<T>, 'id' | 'status'>;

// A racing writer can move the row between our UPDATE and our look at it; try again then.
const MAX_ATTEMPTS = 5;

interface StatusRow {
  id: string;
  status: string;
}

/** Untyped core: the exported wrappers below tie entity, machine, statuses and patch together. */
async function guardedTransition(
  em: EntityManager,
  entity: EntityName<StatusRow>,
  machine: StatusMachine,
  id: string,
  to: string,
  patch: object | undefined,
): Promise<boolean> {
  const from = statusesThatMayBecome(machine, to as never) as string[];
  for (let attempt = 1; ; attempt++) {
    if (from.length > 0) {
      const changed = await em.nativeUpdate(entity, { id, status: { $in: from } }, { ...patch, status: to });
      if (changed > 0) {
        await reloadIfManaged(em, entity, id, ['status', ...Object.keys(patch ?? {})]);
        return true;
      }
    }
    const row = (await em.createQueryBuilder(entity).select('status').where({ id }).execute('get')) as { status: string } | undefined;
    if (!row) throw new RowNotFoundError(machine, id, to);
    if (row.status === to) {
      await reloadIfManaged(em, entity, id, ['status']);
      return false;
    }
    if (!canTransition(machine, row.status as never, to as never)) {
      throw new IllegalTransitionError(machine, row.status, to);
    }
    if (attempt >= MAX_ATTEMPTS) {
      throw new Error(
        `cannot move ${machine} '${id}' to '${to}': its status kept changing under concurrent writers ` +
          `(${MAX_ATTEMPTS} attempts, last seen '${row.status}')`,
      );
    }
  }
}

/**
 * Brings an already loaded entity of the row up to date, reloading only the columns this call wrote:
 * its other unflushed changes stay pending, and a later flush does not write the status again (which
 * could undo a newer transition made by someone else in between).
 */
async function reloadIfManaged(em: EntityManager, entity: EntityName<StatusRow>, id: string, written: string[]) {
  const loaded = em.getUnitOfWork().getById(entity, id);
  if (loaded) await em.refresh(loaded, { fields: written as never[] });
}

// The entities' own types are richer than StatusRow; the core only touches id and status.
const asStatusRow = <T extends StatusRow>(entity: EntityName<T>) => entity as unknown as EntityName<StatusRow>;

export function transitionUnit(em: EntityManager, unitId: string, to: UnitStatus, patch?: TransitionPatch<Unit>): Promise<boolean> {
  return guardedTransition(em, asStatusRow(Unit), 'unit', unitId, to, patch);
}

/**
 * Many units to `assigned` at once, each to its own worker, in one guarded UPDATE (`... WHERE id IN
 * (...) AND status IN (statuses that may become assigned)`): a registration batch's write. Returns
 * the units moved; one moved by another writer first stays as it is, so a caller that must move all
 * of them compares the count (and holds the rows locked before deciding, so it cannot lose them).
 */
export async function assignUnits(em: EntityManager, units: ReadonlyArray<{ unitId: string; workerId: string }>, assignedAt: Date): Promise<number> {
  if (units.length === 0) return 0;
  const workerOf = raw(`case id ${units.map(() => 'when ? then ?').join(' ')} end`, units.flatMap((u) => [u.unitId, u.workerId]));
  return em.nativeUpdate(
    Unit,
    { id: { $in: units.map((u) => u.unitId) }, status: { $in: statusesThatMayBecome('unit', 'assigned') } },
    { status: 'assigned', assignedAt, worker: workerOf },
  );
}

export function transitionAgent(em: EntityManager, agentId: string, to: AgentStatus, patch?: TransitionPatch<Agent>): Promise<boolean> {
  return guardedTransition(em, asStatusRow(Agent), 'agent', agentId, to, patch);
}

export function transitionTaskRun(
  em: EntityManager,
  taskRunId: string,
  to: TaskRunStatus,
  patch?: TransitionPatch<TaskRun>,
): Promise<boolean> {
  return guardedTransition(em, asStatusRow(TaskRun), 'task_run', taskRunId, to, patch);
}

export function transitionOnboardingAgent(
  em: EntityManager,
  onboardingAgentId: string,
  to: OnboardingAgentStatus,
  patch?: TransitionPatch<OnboardingAgent>,
): Promise<boolean> {
  return guardedTransition(em, asStatusRow(OnboardingAgent), 'onboarding_agent', onboardingAgentId, to, patch);
}
