/**
 * A batch of registrations, decided in order and written in one transaction: the rules are
 * ./decision.ts, the facts they decide on are read once for the whole batch (./batch.ts); this file
 * puts them in order and writes the outcome (units assigned and their agents, onboarding attempts,
 * nothing for a refusal), the normal units of the whole batch in one statement per table.
 */
import type { Blueprint, UnitPosition } from '../blueprints/types.ts';
import { componentOptions, type TaskRunConfig } from '../config/taskRunConfig.ts';
import type { Database, EntityManager } from '../model/database.ts';
import { Agent } from '../model/entities.ts';
import { claimItems } from '../activities/itemClaims.ts';
import { assignUnits } from '../model/transitions.ts';
import { startOnboarding } from '../qualifications/onboarding.ts';
import { makeQualifyingUnit } from '../qualifications/qualifyingUnits.ts';
import type { RunLimits, UnitRequest, UnitRequestResult } from '../workflows/definitions.ts';
import { NO_UNIT_FREE, answerForEarlierAgent, chooseUnitKind, decideEligibility, usesQualifyingUnits } from './decision.ts';
import { agentIdFor } from './ids.ts';
import { RegistrationBatch, type FreeUnit } from './batch.ts';
import { lockBudgetForQualifyingUnits, qualifyingStanding } from './standing.ts';

export interface RunForRegistration {
  runId: string;
  taskId: string;
  config: TaskRunConfig;
  limits: RunLimits;
  blueprint: Blueprint;
  /** Items in the run's data, for "item k of up to n". */
  items: number;
}

/**
 * A request; `legacyAgentId`: the id a run from before derived ids chose for this request (an
 * agent it made is then recognised as this decision's).
 */
export type RegistrationRequest = UnitRequest & { legacyAgentId?: string | undefined };

/**
 * Decide a batch of registrations in order. `decidedBy` names the deciding workflow run: an agent it
 * made before a crash (or earlier in this batch) is reported `newlyAssigned` again, so the run still
 * hands it to its assignment (once: the workflow remembers what it handed over).
 */
export async function registerWorkers(
  db: Database,
  run: RunForRegistration,
  requests: readonly RegistrationRequest[],
  decidedBy: string,
): Promise<UnitRequestResult[]> {
  if (requests.length === 0) return [];
  return db.em().transactional(async (em) => {
    await lockBudgetForQualifyingUnits(em, run);
    const batch = await RegistrationBatch.read(em, db.dialect, run, requests);
    const writes = new NormalUnitWrites(run, decidedBy);
    const results: UnitRequestResult[] = [];
    for (const request of requests) results.push(await decide(em, run, batch, writes, request, decidedBy));
    await writes.write(em);
    return results;
  });
}

async function decide(
  em: EntityManager,
  run: RunForRegistration,
  batch: RegistrationBatch,
  writes: NormalUnitWrites,
  request: RegistrationRequest,
  decidedBy: string,
): Promise<UnitRequestResult> {
  const { config, runId } = run;
  const worker = batch.workerOf(request);
  const earlier = batch.knownAgent(worker.id, request.registrationKey);
  if (earlier) {
    return answerForEarlierAgent(
      { ...earlier, madeByThisRun: earlier.decidedBy === decidedBy || (earlier.decidedBy === null && earlier.id === request.legacyAgentId) },
      worker.id,
    );
  }
  const eligibility = decideEligibility(config, run.limits, batch.standing(request));
  if (eligibility.outcome === 'refused') return eligibility;
  if (eligibility.outcome === 'needs_onboarding') {
    return startOnboarding(em, {
      runId,
      worker,
      registrationKey: request.registrationKey,
      blueprint: run.blueprint,
      blueprintOptions: componentOptions(config.blueprint),
    });
  }
  const unit = await batch.freeUnitFor(request);
  // Screening and gold only while real work is waiting: no one screens for work that is not there.
  if (!unit) return NO_UNIT_FREE;
  const position = batch.nextPosition(request);
  const agentId = agentIdFor(runId, worker.id, request.registrationKey);
  if (usesQualifyingUnits(config)) {
    // Their rules read the run's spend and units as they are now, this batch's so far included.
    await writes.write(em);
    const grants = batch.grantsOf(request);
    const choice = chooseUnitKind(config, await qualifyingStanding(em, { runId, config, workerId: worker.id, grants }));
    if ('outcome' in choice) return choice;
    if (choice.kind !== 'normal') {
      const made = await makeQualifyingUnit(
        em,
        { runId, config, blueprint: run.blueprint, worker, agentId, decidedBy, registrationKey: request.registrationKey, position },
        choice.kind,
      );
      batch.recordAssigned(request, {
        id: made.agentId,
        status: 'accepted',
        unitId: made.unitId,
        assignmentId: made.assignmentId,
        unitKind: choice.kind,
        decidedBy,
        itemKey: null,
      });
      return made;
    }
  }
  writes.add({ unit, workerId: worker.id, agentId, registrationKey: request.registrationKey, position });
  batch.recordAssigned(request, {
    id: agentId,
    status: 'accepted',
    unitId: unit.id,
    assignmentId: unit.assignmentId,
    unitKind: 'normal',
    decidedBy,
    itemKey: unit.itemKey,
  });
  return { outcome: 'assigned', agentId, unitId: unit.id, assignmentId: unit.assignmentId, workerId: worker.id, newlyAssigned: true };
}

interface NormalAssignment {
  unit: FreeUnit;
  workerId: string;
  agentId: string;
  registrationKey: string;
  position: UnitPosition;
}

/** The normal units a batch hands out, written together: one UPDATE of the units, one INSERT of agents (and of item claims). */
class NormalUnitWrites {
  readonly #run: RunForRegistration;
  readonly #decidedBy: string;
  #pending: NormalAssignment[] = [];

  constructor(run: RunForRegistration, decidedBy: string) {
    this.#run = run;
    this.#decidedBy = decidedBy;
  }

  add(assignment: NormalAssignment): void {
    this.#pending.push(assignment);
  }

  async write(em: EntityManager): Promise<void> {
    const rows = this.#pending;
    if (rows.length === 0) return;
    this.#pending = [];
    const run = this.#run;
    const now = new Date();
    // The batch holds these units locked since it read them free (SQLite: one writer at a time), so all move.
    const moved = await assignUnits(
      em,
      rows.map((r) => ({ unitId: r.unit.id, workerId: r.workerId })),
      now,
    );
    if (moved !== rows.length) throw new Error(`registration batch: ${rows.length - moved} of ${rows.length} units were taken meanwhile; retried`);
    // Overlap: the claim's unique key refuses a second unit of an item to one worker, whatever ran concurrently.
    if (run.config.overlap) {
      await claimItems(
        em,
        run.taskId,
        rows.map((r) => ({ assignment: { id: r.unit.assignmentId, itemKey: r.unit.itemKey }, workerId: r.workerId, unitId: r.unit.id })),
      );
    }
    const options = componentOptions(run.config.blueprint);
    await em.insertMany(
      Agent,
      rows.map((r) => ({
        id: r.agentId,
        unit: r.unit.id,
        assignment: r.unit.assignmentId,
        taskRun: run.runId,
        worker: r.workerId,
        status: 'accepted' as const,
        registrationKey: r.registrationKey,
        decidedBy: this.#decidedBy,
        initData: run.blueprint.initData({
          assignmentData: r.unit.assignmentData,
          unitIndex: r.unit.unitIndex,
          options,
          position: r.position,
        }) as Record<string, unknown>,
        lastSeenAt: now,
        createdAt: now,
      })),
    );
  }
}
