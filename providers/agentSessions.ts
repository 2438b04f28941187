/**
 * The provider's session of each agent: what a provider's own records call the piece of work a
 * worker opened the task page from (MTurk: the assignment id of the HIT they accepted). The gateway
 * records it when a register is answered with an agent, before the worker hears of the agent, so
 * every agent that can submit has it; review and re-offering then ask the provider about that one
 * session instead of searching for it (docs/design.md §5). Kept in provider_call (operation
 * `agentSession`, target the agent): a record, not a call to the provider. Two gateways answering
 * retries of one register at once may both write it (the same session); the first row stands.
 */
import type { EntityManager } from '@mikro-orm/core';
import { Agent, ProviderCall, Worker } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, SUBMITTED_AGENT_STATUSES, type AgentStatus } from '../model/status.ts';

const OPERATION = 'agentSession';
const keyOf = (agentId: string): string => `agent:${agentId}`;

export async function recordAgentSession(em: EntityManager, provider: string, agentId: string, session: string): Promise<void> {
  const known = await em.findOne(ProviderCall, { provider, operation: OPERATION, requestKey: keyOf(agentId) }, { fields: ['id'] });
  if (known) return;
  await em.insert(ProviderCall, { provider, operation: OPERATION, requestKey: keyOf(agentId), target: agentId, payload: { session }, createdAt: new Date() });
}

/** The session recorded for an agent, or null (an agent registered before sessions were recorded). */
export async function agentSession(em: EntityManager, provider: string, agentId: string): Promise<string | null> {
  const row = await em.findOne(ProviderCall, { provider, operation: OPERATION, requestKey: keyOf(agentId) }, { orderBy: { id: 'asc' } });
  const session = (row?.payload as { session?: unknown } | undefined)?.session;
  return typeof session === 'string' ? session : null;
}

/** The agent a session carries (see `agentOfSession`), with what a gateway binds a socket to. */
export interface SessionAgent {
  agentId: string;
  status: AgentStatus;
  /** True when the agent has submitted its unit; false when it still holds it. */
  submitted: boolean;
  unitId: string;
  assignmentId: string;
  workerId: string;
}

/**
 * The agent of the run that carries the unit of `session`, if any: one that submitted it, else one
 * that still holds it. A session carries one unit (an MTurk assignment pays once), so a new
 * registration from it gets no second unit: the gateway answers with that agent instead (its end,
 * or the agent itself, for a page opened again in another tab). Read through the worker's own
 * agents of the run that submitted or hold a unit (a few), whose sessions are found by key.
 */
export async function agentOfSession(
  em: EntityManager,
  at: { provider: string; runId: string; providerWorkerId: string; session: string },
): Promise<SessionAgent | null> {
  const worker = await em.findOne(Worker, { provider: at.provider, providerWorkerId: at.providerWorkerId }, { fields: ['id'] });
  if (!worker) return null;
  const agents = await em.find(
    Agent,
    { taskRun: at.runId, worker: worker.id, status: { $in: [...SUBMITTED_AGENT_STATUSES, ...ACTIVE_AGENT_STATUSES] } },
    { fields: ['id', 'status', 'unit', 'assignment'] },
  );
  if (agents.length === 0) return null;
  const rows = await em.find(ProviderCall, { provider: at.provider, operation: OPERATION, requestKey: { $in: agents.map((a) => keyOf(a.id)) } }, { fields: ['target', 'payload'] });
  const ofSession = new Set(rows.filter((r) => (r.payload as { session?: unknown } | undefined)?.session === at.session).map((r) => r.target));
  const carried = agents.filter((a) => ofSession.has(a.id));
  const agent = carried.find((a) => SUBMITTED_AGENT_STATUSES.includes(a.status)) ?? carried[0];
  if (!agent) return null;
  return {
    agentId: agent.id,
    status: agent.status,
    submitted: SUBMITTED_AGENT_STATUSES.includes(agent.status),
    unitId: agent.unit.id,
    assignmentId: agent.assignment.id,
    workerId: worker.id,
  };
}
