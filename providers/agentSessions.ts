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
import { ProviderCall } from '../model/entities.ts';

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
