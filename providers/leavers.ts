/**
 * Workers who left a unit at their provider without submitting (a returned study, a session that ran
 * out of time there), and the agents of a run that still hold a unit for them. A provider's
 * notification (Prolific's webhook) and the run's poll of the provider (activities/providerPolling.ts)
 * both end in `agentsLeaving`, then signal `agentReturned` with the status to each agent's assignment.
 */
import type { EntityManager } from '@mikro-orm/core';
import { Agent, Worker } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, type ProviderLeavingStatus } from '../model/status.ts';

export interface Leaver {
  providerWorkerId: string;
  status: ProviderLeavingStatus;
}

export interface LeavingAgent {
  agentId: string;
  assignmentId: string;
  status: ProviderLeavingStatus;
}

/** The agents of `runId` still holding a unit for one of `leavers` (at most one status per worker: the last given). */
export async function agentsLeaving(em: EntityManager, provider: string, runId: string, leavers: readonly Leaver[]): Promise<LeavingAgent[]> {
  if (leavers.length === 0) return [];
  const statusOf = new Map(leavers.map((l) => [l.providerWorkerId, l.status]));
  const workers = await em.find(Worker, { provider, providerWorkerId: { $in: [...statusOf.keys()] } }, { fields: ['id', 'providerWorkerId'] });
  if (workers.length === 0) return [];
  const workerStatus = new Map(workers.map((w) => [w.id, statusOf.get(w.providerWorkerId)!]));
  const agents = await em.find(
    Agent,
    { taskRun: runId, worker: { $in: [...workerStatus.keys()] }, status: { $in: [...ACTIVE_AGENT_STATUSES] } },
    { fields: ['id', 'assignment', 'worker'], orderBy: { id: 'asc' } },
  );
  return agents.map((a) => ({ agentId: a.id, assignmentId: a.assignment.id, status: workerStatus.get(a.worker.id)! }));
}
