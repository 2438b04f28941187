/**
 * One registration, decided and written in one transaction: the rules are ./decision.ts, the reads
 * ./standing.ts; this file only puts them in order and writes the outcome (a unit assigned and its
 * agent, an onboarding attempt, or nothing for a refusal).
 */
import { LockMode } from '@mikro-orm/core';
import type { Blueprint, UnitPosition } from '../blueprints/types.ts';
import { componentOptions, type TaskRunConfig } from '../config/taskRunConfig.ts';
import type { Database, EntityManager } from '../model/database.ts';
import { Agent, Assignment, Worker } from '../model/entities.ts';
import { transitionUnit } from '../model/transitions.ts';
import { startOnboarding } from '../qualifications/onboarding.ts';
import { makeQualifyingUnit } from '../qualifications/qualifyingUnits.ts';
import { claimItem, claimedAssignments } from '../activities/itemClaims.ts';
import type { RunLimits, UnitRequest, UnitRequestResult } from '../workflows/definitions.ts';
import { NO_UNIT_FREE, answerForEarlierAgent, chooseUnitKind, decideEligibility, usesQualifyingUnits } from './decision.ts';
import { agentIdFor } from './ids.ts';
import { nextUnitPosition } from './position.ts';
import { grantsOf } from '../qualifications/grants.ts';
import { findOrCreateWorker, freeUnitFor, qualifyingStanding, workerStanding } from './standing.ts';

/** Units lost to concurrent registrations before the transaction gives up (and the activity retries). */
const MAX_UNIT_RACES = 20;

export interface RunForRegistration {
  runId: string;
  taskId: string;
  config: TaskRunConfig;
  limits: RunLimits;
  blueprint: Blueprint;
}

/**
 * Decide one registration. `decidedBy` names the deciding workflow run: an agent it made before a
 * crash is reported `newlyAssigned` again, so the run still hands it to its assignment (once: the
 * workflow remembers what it handed over). `legacyAgentId`: the id a run from before derived ids
 * chose for this request (same purpose).
 */
export async function registerWorker(
  db: Database,
  run: RunForRegistration,
  request: UnitRequest & { legacyAgentId?: string | undefined },
  decidedBy: string,
): Promise<UnitRequestResult> {
  const { runId, config } = run;
  return db.em().transactional(async (em) => {
    const worker = await findOrCreateWorker(em, request.provider, request.providerWorkerId);
    if (db.dialect === 'postgresql') {
      // Serialises one worker's registrations across runs, so `maximum_units_per_worker` holds.
      await em.findOne(Worker, worker.id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    }
    const earlier = await em.findOne(Agent, { worker: worker.id, registrationKey: request.registrationKey }, { populate: ['unit'] });
    if (earlier) {
      return answerForEarlierAgent(
        {
          id: earlier.id,
          status: earlier.status,
          unitId: earlier.unit.id,
          assignmentId: earlier.assignment.id,
          unitKind: earlier.unit.getEntity().kind,
          madeByThisRun: earlier.decidedBy === decidedBy || (earlier.decidedBy === null && earlier.id === request.legacyAgentId),
        },
        worker.id,
      );
    }
    const grants = await grantsOf(em, worker.id);
    const eligibility = decideEligibility(config, run.limits, await workerStanding(em, { runId, config, limits: run.limits, worker, grants }));
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
    // Overlap: never a second unit of an item the worker was given before, in any run of the task.
    const claimed = config.overlap ? await claimedAssignments(em, { runId, taskId: run.taskId, workerId: worker.id }) : [];
    const agentId = agentIdFor(runId, worker.id, request.registrationKey);
    const who = { worker, agentId, decidedBy, registrationKey: request.registrationKey };
    for (let attempt = 1; ; attempt++) {
      const unit = await freeUnitFor(em, runId, worker.id, claimed);
      // Screening and gold only while real work is waiting: no one screens for work that is not there.
      if (!unit) return NO_UNIT_FREE;
      const position = await nextUnitPosition(em, { runId, workerId: worker.id, maximumUnitsPerWorker: run.limits.maximum_units_per_worker });
      if (attempt === 1 && usesQualifyingUnits(config)) {
        const choice = chooseUnitKind(config, await qualifyingStanding(em, { runId, config, workerId: worker.id, grants }));
        if ('outcome' in choice) return choice;
        if (choice.kind !== 'normal') return makeQualifyingUnit(em, { runId, config, blueprint: run.blueprint, ...who, position }, choice.kind);
      }
      const result = await assignNormalUnit(em, run, { unitId: unit.id, unitIndex: unit.unitIndex, assignmentId: unit.assignment.id, position }, who);
      if (result) return result;
      // Another registration took the unit between our read and our write: the next free one.
      if (attempt >= MAX_UNIT_RACES) throw new Error(`registration of ${request.providerWorkerId} lost the race for a unit ${attempt} times; retried`);
    }
  });
}

async function assignNormalUnit(
  em: EntityManager,
  run: RunForRegistration,
  unit: { unitId: string; unitIndex: number; assignmentId: string; position: UnitPosition },
  who: { worker: Worker; agentId: string; decidedBy: string; registrationKey: string },
): Promise<UnitRequestResult | null> {
  const { worker } = who;
  // Guarded (launched -> assigned): false when a concurrent registration assigned it first.
  const moved = await transitionUnit(em, unit.unitId, 'assigned', { worker: worker.id, assignedAt: new Date() });
  if (!moved) return null;
  const assignment = await em.findOneOrFail(Assignment, unit.assignmentId);
  if (run.config.overlap) await claimItem(em, { taskId: run.taskId, assignment, workerId: worker.id, unitId: unit.unitId });
  em.create(Agent, {
    id: who.agentId,
    unit: unit.unitId,
    assignment: assignment.id,
    taskRun: run.runId,
    worker: worker.id,
    status: 'accepted',
    registrationKey: who.registrationKey,
    decidedBy: who.decidedBy,
    initData: run.blueprint.initData({
      assignmentData: assignment.data as Record<string, unknown>,
      unitIndex: unit.unitIndex,
      options: componentOptions(run.config.blueprint),
      position: unit.position,
    }) as Record<string, unknown>,
    lastSeenAt: new Date(),
  });
  return { outcome: 'assigned', agentId: who.agentId, unitId: unit.unitId, assignmentId: assignment.id, workerId: worker.id, newlyAssigned: true };
}
