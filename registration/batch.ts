/**
 * What a batch of registrations needs to know, read once for the whole batch in its transaction
 * (a few statements, whatever its size), and kept up to date in memory as the batch decides, so
 * the second request of a worker in one batch sees the unit the first one got. The rules that
 * decide on these facts are ./decision.ts; ./assign.ts puts them in order and writes the outcome.
 *
 * The rows that make the decisions exact under concurrency are locked here (PostgreSQL; SQLite runs
 * one write transaction at a time): the batch's workers (`maximum_units_per_worker` counts across
 * the runs of a task, and another run may register the same worker at the same moment) and the free
 * units the batch may hand out.
 */
import { LockMode } from '@mikro-orm/core';
import type { UnitPosition } from '../blueprints/types.ts';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import type { Dialect, EntityManager } from '../model/database.ts';
import { Agent, ItemClaim, Unit, type UnitKind, type Worker } from '../model/entities.ts';
import { isActiveAgentStatus, type AgentStatus } from '../model/status.ts';
import { grantsOfWorkers } from '../qualifications/grants.ts';
import type { Grants } from '../qualifications/requirements.ts';
import type { RunLimits, UnitRequest } from '../workflows/definitions.ts';
import { COUNTED_FOR_TASK, type WorkerStanding } from './decision.ts';
import { unitPosition } from './position.ts';
import { findOrCreateWorkers } from './standing.ts';

/** Free units read ahead beyond one per request: room to skip the items a worker already had. */
const SPARE_FREE_UNITS = 50;

/** A launched unit the batch may hand out, with its item. */
export interface FreeUnit {
  id: string;
  unitIndex: number;
  assignmentId: string;
  assignmentData: Record<string, unknown>;
  /** The item across the task's runs (overlap); null on rows from before item keys. */
  itemKey: string | null;
}

/** An agent a request with the same registration key got before (this batch or earlier). */
export interface KnownAgent {
  id: string;
  status: AgentStatus;
  unitId: string;
  assignmentId: string;
  unitKind: UnitKind;
  decidedBy: string | null;
}

/** One worker of the batch as the rules see them; updated as the batch hands them units. */
interface BatchWorker {
  worker: Worker;
  grants: Grants;
  /** Assignments of this run the worker had an agent in, whatever became of it: never a second unit of one. */
  workedAssignments: Set<string>;
  /** Items of the task the worker claimed (overlap runs). */
  claimedItems: Set<string>;
  /** Units of this run held now. */
  holdingInRun: number;
  /** Units of this run held, done or reviewed: what "item k of n" counts. */
  takenInRun: number;
  /** Normal units of the task held, done or reviewed (read only when `maximum_units_per_worker` is set). */
  doneInTask: number;
}

export interface BatchRun {
  runId: string;
  taskId: string;
  config: TaskRunConfig;
  limits: RunLimits;
  /** Items in the run's data (`TaskRun.assignmentCount`), for "item k of up to n". */
  items: number;
}

const workerKey = (provider: string, providerWorkerId: string): string => `${provider}\0${providerWorkerId}`;
const agentKey = (workerId: string, registrationKey: string): string => `${workerId}\0${registrationKey}`;

export class RegistrationBatch {
  readonly #em: EntityManager;
  readonly #run: BatchRun;
  /** Lock the rows read (PostgreSQL; SQLite has one writer at a time). */
  readonly #lock: boolean;
  readonly #workers: Map<string, BatchWorker>;
  readonly #known: Map<string, KnownAgent>;
  /** Free units in data order, as read; `#taken` are those handed out since. */
  readonly #free: FreeUnit[];
  /** Whether `#free` may have stopped short of the run's free units (then a worker who finds none there asks the database). */
  readonly #freeTruncated: boolean;
  readonly #taken = new Set<string>();

  private constructor(
    em: EntityManager,
    run: BatchRun,
    lock: boolean,
    facts: { workers: Map<string, BatchWorker>; known: Map<string, KnownAgent>; free: FreeUnit[]; freeTruncated: boolean },
  ) {
    this.#em = em;
    this.#run = run;
    this.#lock = lock;
    this.#workers = facts.workers;
    this.#known = facts.known;
    this.#free = facts.free;
    this.#freeTruncated = facts.freeTruncated;
  }

  /** Read (and lock) what the batch's requests need. Call first in the batch's transaction. */
  static async read(em: EntityManager, dialect: Dialect, run: BatchRun, requests: readonly UnitRequest[]): Promise<RegistrationBatch> {
    const lock = dialect === 'postgresql';
    const rows = await findOrCreateWorkers(em, requests, lock);
    const ids = rows.map((w) => w.id);
    // One statement each, in turn (a transaction is one connection).
    const known = await knownAgents(em, ids, requests);
    const grants = readsGrants(run.config) ? await grantsOfWorkers(em, ids) : new Map<string, Grants>();
    const inRun = await em.find(Agent, { worker: { $in: ids }, taskRun: run.runId }, { fields: ['worker', 'assignment', 'status'] });
    const doneInTask = await normalUnitsDoneInTask(em, run, ids);
    const claims = run.config.overlap ? await em.find(ItemClaim, { task: run.taskId, worker: { $in: ids } }, { fields: ['worker', 'itemKey'] }) : [];
    const free = await freeUnits(em, lock, run.runId, requests.length + SPARE_FREE_UNITS);
    const workers = new Map<string, BatchWorker>();
    for (const worker of rows) {
      workers.set(workerKey(worker.provider, worker.providerWorkerId), {
        worker,
        grants: grants.get(worker.id) ?? new Map(),
        workedAssignments: new Set(),
        claimedItems: new Set(),
        holdingInRun: 0,
        takenInRun: 0,
        doneInTask: doneInTask.get(worker.id) ?? 0,
      });
    }
    const byId = new Map([...workers.values()].map((w) => [w.worker.id, w]));
    for (const agent of inRun) {
      const w = byId.get(agent.worker.id)!;
      w.workedAssignments.add(agent.assignment.id);
      if (isActiveAgentStatus(agent.status)) w.holdingInRun += 1;
      if (COUNTED_FOR_TASK.includes(agent.status)) w.takenInRun += 1;
    }
    for (const claim of claims) byId.get(claim.worker.id)!.claimedItems.add(claim.itemKey);
    return new RegistrationBatch(em, run, lock, {
      workers,
      known,
      free: free.units,
      freeTruncated: free.truncated,
    });
  }

  /** The request's worker (every one was found or made by `read`). */
  workerOf(request: UnitRequest): Worker {
    return this.#entry(request).worker;
  }

  grantsOf(request: UnitRequest): Grants {
    return this.#entry(request).grants;
  }

  /** The agent this registration (worker and key) got before, in this batch or an earlier one. */
  knownAgent(workerId: string, registrationKey: string): KnownAgent | undefined {
    return this.#known.get(agentKey(workerId, registrationKey));
  }

  standing(request: UnitRequest): WorkerStanding {
    const w = this.#entry(request);
    return { blocked: w.worker.blocked, grants: w.grants, holdingInRun: w.holdingInRun, doneInTask: w.doneInTask };
  }

  /** Where the next unit handed to the worker stands on their page ("item k of up to n"). */
  nextPosition(request: UnitRequest): UnitPosition {
    return unitPosition(this.#entry(request).takenInRun, this.#run.items, this.#run.limits.maximum_units_per_worker);
  }

  /**
   * The first free unit, in data order, of an item the worker never had (no agent in its
   * assignment; in overlap runs, no claim on its item in the task), not handed out in this batch.
   * It stays free until `recordAssigned`.
   */
  async freeUnitFor(request: UnitRequest): Promise<FreeUnit | null> {
    const w = this.#entry(request);
    const fits = (u: FreeUnit): boolean =>
      !this.#taken.has(u.id) && !w.workedAssignments.has(u.assignmentId) && !(u.itemKey !== null && w.claimedItems.has(u.itemKey));
    const found = this.#free.find(fits);
    if (found || !this.#freeTruncated) return found ?? null;
    // Past what was read ahead (a worker who had many of the first items): ask the database.
    const more = await freeUnits(this.#em, this.#lock, this.#run.runId, 1, {
      taken: [...this.#taken],
      workedAssignments: [...w.workedAssignments],
      claimedItems: [...w.claimedItems],
    });
    return more.units[0] ?? null;
  }

  /** The worker got an agent in this assignment (a normal unit, or a screening or gold unit made for them). */
  recordAssigned(request: UnitRequest, agent: KnownAgent & { itemKey: string | null }): void {
    const w = this.#entry(request);
    if (agent.unitKind === 'normal') this.#taken.add(agent.unitId);
    w.workedAssignments.add(agent.assignmentId);
    if (agent.itemKey !== null && this.#run.config.overlap) w.claimedItems.add(agent.itemKey);
    w.holdingInRun += 1;
    w.takenInRun += 1;
    if (agent.unitKind === 'normal') w.doneInTask += 1;
    this.#known.set(agentKey(w.worker.id, request.registrationKey), agent);
  }

  #entry(request: UnitRequest): BatchWorker {
    const w = this.#workers.get(workerKey(request.provider, request.providerWorkerId));
    if (!w) throw new Error(`worker ${request.provider} ${request.providerWorkerId} was not read with its batch`);
    return w;
  }
}

async function knownAgents(em: EntityManager, workerIds: string[], requests: readonly UnitRequest[]): Promise<Map<string, KnownAgent>> {
  const agents = await em.find(
    Agent,
    { worker: { $in: workerIds }, registrationKey: { $in: [...new Set(requests.map((r) => r.registrationKey))] } },
    { populate: ['unit'], fields: ['id', 'status', 'worker', 'registrationKey', 'assignment', 'decidedBy', 'unit.kind'] },
  );
  return new Map(
    agents.map((a) => [
      agentKey(a.worker.id, a.registrationKey!),
      { id: a.id, status: a.status, unitId: a.unit.id, assignmentId: a.assignment.id, unitKind: a.unit.getEntity().kind, decidedBy: a.decidedBy ?? null },
    ]),
  );
}

/** Whether any rule of the run reads the worker's qualifications (else they are not read). */
function readsGrants(config: TaskRunConfig): boolean {
  return (
    config.block_qualification !== undefined ||
    config.qualifications.length > 0 ||
    config.onboarding_qualification !== undefined ||
    config.screening.enabled ||
    config.gold.enabled
  );
}

/** Normal units of any run of the task each worker holds, did or had reviewed; only when the run caps them. */
async function normalUnitsDoneInTask(em: EntityManager, run: BatchRun, workerIds: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (run.limits.maximum_units_per_worker <= 0) return counts;
  const agents = await em.find(
    Agent,
    {
      worker: { $in: workerIds },
      taskRun: { task: run.taskId },
      status: { $in: [...COUNTED_FOR_TASK] },
      // Screening and gold units check the worker; the cap is on the work itself.
      unit: { kind: 'normal' },
    },
    { fields: ['worker'] },
  );
  for (const a of agents) counts.set(a.worker.id, (counts.get(a.worker.id) ?? 0) + 1);
  return counts;
}

/** Launched units of the run in data order, locked, leaving out what `not` names. */
async function freeUnits(
  em: EntityManager,
  lock: boolean,
  runId: string,
  limit: number,
  not: { taken: string[]; workedAssignments: string[]; claimedItems: string[] } = { taken: [], workedAssignments: [], claimedItems: [] },
): Promise<{ units: FreeUnit[]; truncated: boolean }> {
  const units = await em.find(
    Unit,
    {
      taskRun: runId,
      status: 'launched',
      ...(not.taken.length > 0 ? { id: { $nin: not.taken } } : {}),
      ...(not.workedAssignments.length > 0 || not.claimedItems.length > 0
        ? {
            assignment: {
              ...(not.workedAssignments.length > 0 ? { id: { $nin: not.workedAssignments } } : {}),
              ...(not.claimedItems.length > 0 ? { $or: [{ itemKey: null }, { itemKey: { $nin: not.claimedItems } }] } : {}),
            },
          }
        : {}),
    },
    {
      populate: ['assignment'],
      orderBy: { assignment: { index: 'asc' }, unitIndex: 'asc' },
      limit,
      // Only the unit rows: their status is what changes; the items are only read.
      ...(lock ? { lockMode: LockMode.PESSIMISTIC_WRITE, lockTableAliases: ['u0'] } : {}),
    },
  );
  return {
    units: units.map((u) => {
      const assignment = u.assignment.getEntity();
      return {
        id: u.id,
        unitIndex: u.unitIndex,
        assignmentId: assignment.id,
        assignmentData: assignment.data as Record<string, unknown>,
        itemKey: assignment.itemKey ?? null,
      };
    }),
    truncated: units.length === limit,
  };
}
