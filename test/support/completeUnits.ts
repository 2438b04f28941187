/**
 * Getting units to `completed` for tests that review, pay or export them: workers take units
 * through the `requestUnit` update and submit them, and the test waits until the database holds
 * each submission.
 */
import type { Client } from '@temporalio/client';
import type { Database } from '../../model/database.ts';
import { Unit } from '../../model/entities.ts';
import type { UnitRequestResult } from '../../workflows/definitions.ts';
import { requestUnit, submit } from './directAgents.ts';
import { eventually } from './stack.ts';

export type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

/** A unit for `worker`, asking again while the run has none launched yet. */
export async function takeUnit(client: Client, runId: string, worker: string): Promise<Assigned> {
  return eventually(async () => {
    const result = await requestUnit(client, runId, worker);
    if (result.outcome === 'assigned') return result;
    if (result.outcome === 'refused' && result.reason === 'no_units_available') return undefined;
    throw new Error(`${worker} was refused a unit of run ${runId}: ${JSON.stringify(result)}`);
  }, `a unit of run ${runId} for ${worker}`);
}

export async function waitForUnitStatus(db: Database, unitId: string, status: string): Promise<void> {
  await eventually(async () => {
    const unit = await db.em().findOne(Unit, unitId, { fields: ['status'] });
    return unit?.status === status ? true : undefined;
  }, `unit ${unitId} to become ${status}`);
}

/** `worker` takes a unit and submits `data`; resolves once the unit is completed in the database. */
export async function completeUnit(
  client: Client,
  db: Database,
  runId: string,
  worker: string,
  data: Record<string, unknown>,
): Promise<Assigned> {
  const unit = await takeUnit(client, runId, worker);
  await submit(client, unit.assignmentId, unit.agentId, data);
  await waitForUnitStatus(db, unit.unitId, 'completed');
  return unit;
}
