/**
 * Workers' agreement and estimated accuracy in an overlap run (docs/design.md §3), for `review`,
 * and as a qualification: `hitloop review workers <runId> --grant <name>` grants each worker its
 * accuracy as an integer per cent (e.g. 87), which a later run can require (`GreaterThanOrEqualTo 80`).
 */
import type { QualificationService } from '../qualifications/service.ts';
import type { EntityManager } from '../model/database.ts';
import { aggregateRun, type AggregatedItem, type WorkerQuality } from './itemAggregates.ts';

export const percent = (share: number): number => Math.round(share * 100);

export async function workerQuality(em: EntityManager, runId: string): Promise<WorkerQuality[]> {
  const { workers } = await aggregateRun(em, runId);
  return workers.sort((a, b) => b.accuracy - a.accuracy || a.providerWorkerId.localeCompare(b.providerWorkerId));
}

export async function itemsOfRun(em: EntityManager, runId: string): Promise<AggregatedItem[]> {
  return (await aggregateRun(em, runId)).items;
}

/** Grants `name` = accuracy in per cent to every worker of the run; the same value again changes nothing. */
export async function grantAccuracy(
  service: QualificationService,
  runId: string,
  name: string,
  workers: readonly WorkerQuality[],
): Promise<Array<{ providerWorkerId: string; value: number; changed: boolean }>> {
  const outcomes = [];
  for (const w of workers) {
    const value = percent(w.accuracy);
    const outcome = await service.grant({
      provider: w.provider,
      providerWorkerId: w.providerWorkerId,
      name,
      value,
      requestKey: `accuracy:${runId}:${w.workerId}:${value}`.slice(0, 200),
    });
    outcomes.push({ providerWorkerId: w.providerWorkerId, value, changed: outcome.changed });
  }
  return outcomes;
}
