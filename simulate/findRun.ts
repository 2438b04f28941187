/**
 * What `hitloop simulate` learns of a run from the database: its provider (how to make worker
 * links) and the gateway its units were launched with (the task URL given to the provider).
 */
import type { Database } from '../model/database.ts';
import { ProviderCall, TaskRun, Unit } from '../model/entities.ts';

export interface RunForSimulation {
  runId: string;
  providerType: string;
  /** Origin of the task URL the run's units were launched with, if any unit was launched yet. */
  gatewayUrl: string | null;
}

export async function findRunForSimulation(db: Database, runId: string): Promise<RunForSimulation> {
  const em = db.em();
  const run = await em.findOne(TaskRun, runId, { fields: ['providerType'] });
  if (!run) throw new Error(`no task run "${runId}" in the database (${db.dialect}); \`hitloop runs\` lists the runs`);
  const unit = await em.findOne(Unit, { taskRun: runId, providerUnitId: { $ne: null } }, { fields: ['id'] });
  let gatewayUrl: string | null = null;
  if (unit) {
    const launch = await em.findOne(ProviderCall, { operation: 'launchUnit', target: unit.id }, { fields: ['payload'] });
    const taskUrl = (launch?.payload as { taskUrl?: unknown } | undefined)?.taskUrl;
    if (typeof taskUrl === 'string') {
      try {
        gatewayUrl = new URL(taskUrl).origin;
      } catch {
        gatewayUrl = null;
      }
    }
  }
  return { runId, providerType: run.providerType, gatewayUrl };
}
