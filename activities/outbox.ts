/**
 * The outbox: messages from workflows to agents, kept in the database until the agent has them.
 * Whichever gateway holds the agent's socket delivers them in `seq` order; a reconnecting agent
 * resumes from the last `seq` it acknowledged. The dedupe key makes a retried activity insert once.
 */
import { OutboxMessage } from '../model/entities.ts';
import type { EntityManager } from '../model/database.ts';

/** PostgreSQL channel a gateway LISTENs on; the payload is the agent id. */
export const OUTBOX_CHANNEL = 'hitloop_outbox';

export async function enqueueForAgents(
  em: EntityManager,
  agentIds: readonly string[],
  kind: string,
  payload: unknown,
  dedupeKey: string,
): Promise<void> {
  for (const agentId of agentIds) await enqueueForAgent(em, agentId, kind, payload, dedupeKey);
}

export async function enqueueForAgent(
  em: EntityManager,
  agentId: string,
  kind: string,
  payload: unknown,
  dedupeKey: string,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await em.transactional(async (tem) => {
        if (await tem.findOne(OutboxMessage, { agent: agentId, dedupeKey }, { fields: ['id'] })) return;
        const last = await tem.findOne(OutboxMessage, { agent: agentId }, { orderBy: { seq: 'desc' }, fields: ['seq'] });
        await tem.insert(OutboxMessage, { agent: agentId, seq: (last?.seq ?? 0) + 1, kind, payload, dedupeKey, createdAt: new Date() });
      });
      break;
    } catch (err) {
      // Two senders took the same seq for one agent: the unique (agent, seq) refused one; it goes again.
      if (attempt >= 5 || !String((err as Error).name).includes('UniqueConstraint')) throw err;
    }
  }
  await notifyGateways(em, agentId);
}

async function notifyGateways(em: EntityManager, agentId: string): Promise<void> {
  const platform = em.getPlatform().constructor.name;
  if (platform.toLowerCase().includes('postgre')) {
    await em.getConnection().execute(`select pg_notify(?, ?)`, [OUTBOX_CHANNEL, agentId]);
  }
}
