/**
 * Agents that talk to the workflows directly with the Temporal client (the gateway's part played
 * by the test): register through the `requestUnit` update, submit through the assignment's signal.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { ProviderCall, Unit } from '../../model/entities.ts';
import type { Database } from '../../model/database.ts';
import { WorkflowCalls } from '../../gateway/workflowCalls.ts';
import { type UnitRequestResult, agentSubmitSignal } from '../../workflows/definitions.ts';

/** Registers like the gateway does (its retries included): the same answers a page would get. */
export async function requestUnit(
  client: Client,
  runId: string,
  providerWorkerId: string,
  registrationKey = randomUUID(),
  trace?: string[],
): Promise<UnitRequestResult> {
  const onRetry =
    trace &&
    ((what: string, attempt: number, error: string) =>
      trace.push(`${new Date().toISOString()} ${providerWorkerId} retry ${attempt} of ${what}: ${error}`));
  return new WorkflowCalls(client, { onRetry }).requestUnit(runId, { provider: 'mock', providerWorkerId, registrationKey });
}

/** Submits like the gateway does: its signal retries wait for an assignment workflow still being started. */
export async function submit(client: Client, assignmentId: string, agentId: string, data: Record<string, unknown>): Promise<void> {
  await new WorkflowCalls(client).signalAssignment(assignmentId, agentSubmitSignal, { agentId, submitKey: `submit-${agentId}`, data });
}

/** One worker's loop: take a unit, submit it, until the run has nothing more for it. */
export async function workUntilRefused(
  client: Client,
  runId: string,
  providerWorkerId: string,
  onAssigned?: () => Promise<void>,
  trace?: string[],
): Promise<number> {
  let done = 0;
  const note = (line: string): void => {
    trace?.push(`${new Date().toISOString()} ${providerWorkerId} ${line}`);
  };
  for (;;) {
    note('registering');
    const result = await requestUnit(client, runId, providerWorkerId, randomUUID(), trace);
    if (result.outcome !== 'assigned') {
      note(`refused: ${result.outcome === 'refused' ? result.reason : result.outcome}`);
      if (result.outcome === 'refused' && result.reason === 'no_units_available') {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      return done;
    }
    note(`assigned unit ${result.unitId} (assignment ${result.assignmentId})`);
    await onAssigned?.();
    await submit(client, result.assignmentId, result.agentId, { label: done % 2 === 0 ? 'positive' : 'negative', by: providerWorkerId });
    note(`submitted unit ${result.unitId}`);
    done += 1;
    // Wait until the submission is stored before asking again (allowed_concurrent may be 1).
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Units launched-or-assigned right now, from the database. */
export async function activeUnitCount(db: Database, runId: string): Promise<number> {
  return db.em().count(Unit, { taskRun: runId, status: { $in: ['launched', 'assigned'] } });
}

/**
 * The most units ever launched-or-assigned at once, reconstructed from the mock provider's record
 * of launch calls and the units' completion and expiry times.
 */
export async function peakActiveFromProviderRecord(db: Database, runId: string): Promise<number> {
  const em = db.em();
  const launches = await em.find(ProviderCall, { operation: 'launchUnit', target: { $like: `${runId}-%` } }, { orderBy: { id: 'asc' } });
  const units = await em.find(Unit, { taskRun: runId }, { fields: ['completedAt', 'endedAt'] });
  const ends = units
    .map((u) => u.completedAt ?? u.endedAt)
    .filter((d): d is Date => d instanceof Date)
    .map((d) => d.getTime());
  let peak = 0;
  launches.forEach((launch, i) => {
    const at = launch.createdAt.getTime();
    const finished = ends.filter((t) => t <= at).length;
    peak = Math.max(peak, i + 1 - finished);
  });
  return peak;
}
