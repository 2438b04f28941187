/**
 * The agent row as the gateway's arbiter: which connection may act as the agent, its live state,
 * and its submission claim. Each is one conditional UPDATE, so it holds across sockets and gateways
 * whatever the concurrency (docs/protocol.md "Guarantees"):
 *
 * - the newest binding wins: `register`/`resume` write their connection id; a packet of any other
 *   connection changes nothing and its socket is closed (4001);
 * - `live` data is the agent's state before it is acknowledged, so a resume shows the last
 *   acknowledged state (or a later one), and the bytes an agent may send in all are bounded; it is
 *   passed to the partners through the outbox from here, so it never enters workflow history
 *   (which Temporal bounds: no worker can push an assignment workflow past its limits);
 * - a `submit` claims the agent's one submission key before it is acknowledged, so a second
 *   submission with another key is refused, and a resume after an acknowledged submit says so.
 *
 * Every value goes in as a query parameter.
 */
import { raw } from '@mikro-orm/core';
import { enqueueForAgent } from '../activities/outbox.ts';
import type { Database } from '../model/database.ts';
import { Agent } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, type AgentStatus, SUBMITTED_AGENT_STATUSES } from '../model/status.ts';

export interface AgentRow {
  status: AgentStatus;
  initData: unknown;
  state: unknown;
  submitKey: string | null;
  /** Whether Temporal took the claimed submit's signal (`submitSentAt`). */
  submitSent: boolean;
  connectionId: string | null;
}

/** Why a conditional write changed nothing. */
export type Refusal = 'gone' | 'replaced' | 'ended' | 'quota' | 'already_submitted' | 'not_in_task';

const HOLDING = [...ACTIVE_AGENT_STATUSES] as AgentStatus[];
const IDS_PER_QUERY = 500;

export class AgentBinding {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Bind `connectionId` to the agent; the row as it was before (null when there is no such agent). */
  async bind(agentId: string, connectionId: string): Promise<AgentRow | null> {
    const em = this.#db.em();
    const row = await em.findOne(Agent, agentId, { fields: ['status', 'initData', 'state', 'submitKey', 'submitSentAt', 'connectionId'] });
    if (!row) return null;
    const before: AgentRow = {
      status: row.status,
      initData: row.initData ?? null,
      state: row.state ?? null,
      submitKey: row.submitKey ?? null,
      submitSent: row.submitSentAt !== null && row.submitSentAt !== undefined,
      connectionId: row.connectionId ?? null,
    };
    if (HOLDING.includes(row.status)) await em.nativeUpdate(Agent, { id: agentId }, { connectionId });
    return before;
  }

  /** Record `data` as the agent's state, within its byte budget; null when done, else why not. */
  async recordLive(agentId: string, connectionId: string, data: Record<string, unknown>, bytes: number, budget: number): Promise<Refusal | null> {
    const changed = await this.#db.em().nativeUpdate(
      Agent,
      { id: agentId, connectionId, status: { $in: HOLDING }, liveBytes: { $lte: budget - bytes } },
      { state: data, liveBytes: raw('live_bytes + ?', [bytes]), lastSeenAt: new Date() },
    );
    if (changed > 0) return null;
    return (await this.#whyNot(agentId, connectionId)) ?? 'quota';
  }

  /** Pass a live update to the agent's partners (the other agents of its assignment holding units), once per action. */
  async forwardLive(agentId: string, assignmentId: string, actionId: string, data: Record<string, unknown>): Promise<void> {
    const em = this.#db.em();
    const partners = await em.find(Agent, { assignment: assignmentId, status: { $in: HOLDING }, id: { $ne: agentId } }, { fields: ['id'] });
    for (const partner of partners) {
      await enqueueForAgent(em, partner.id, 'live', { from: agentId, data }, `live:${agentId}:${actionId}`);
    }
  }

  /**
   * Claim the agent's submission for `submitKey` (the same key again is still this claim): null
   * when claimed, `stored` when this very submission is already stored, else why not.
   */
  async claimSubmission(agentId: string, connectionId: string, submitKey: string): Promise<Refusal | 'stored' | null> {
    const em = this.#db.em();
    const changed = await em.nativeUpdate(Agent, { id: agentId, connectionId, status: 'in_task', submitKey: null }, { submitKey });
    if (changed > 0) return null;
    const row = await em.findOne(Agent, agentId, { fields: ['status', 'submitKey', 'connectionId'] });
    if (!row) return 'gone';
    if (row.connectionId !== connectionId) return 'replaced';
    if (row.submitKey === submitKey && row.status === 'in_task') return null;
    if (row.submitKey === submitKey && SUBMITTED_AGENT_STATUSES.includes(row.status)) return 'stored';
    if (row.submitKey !== null && row.submitKey !== undefined) return 'already_submitted';
    return HOLDING.includes(row.status) ? 'not_in_task' : 'ended';
  }

  /** Temporal took the signal of the claim `submitKey`: a resume now reports the agent completed. */
  async submissionSent(agentId: string, submitKey: string): Promise<void> {
    await this.#db.em().nativeUpdate(Agent, { id: agentId, submitKey, submitSentAt: null }, { submitSentAt: new Date() });
  }

  /** Give up a claim whose signal never reached the workflow, so the page may submit again. */
  async releaseSubmission(agentId: string, submitKey: string): Promise<void> {
    await this.#db.em().nativeUpdate(Agent, { id: agentId, status: 'in_task', submitKey }, { submitKey: null });
  }

  /** Null while `connectionId` is the agent's binding and the agent holds its unit, else why not. */
  async check(agentId: string, connectionId: string): Promise<Refusal | null> {
    return this.#whyNot(agentId, connectionId);
  }

  /** Of these agents, the ones now bound to another connection than the one given. */
  async rebound(bindings: ReadonlyMap<string, string>): Promise<string[]> {
    const ids = [...bindings.keys()];
    const taken: string[] = [];
    for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
      const rows = await this.#db.em().find(Agent, { id: { $in: ids.slice(i, i + IDS_PER_QUERY) } }, { fields: ['id', 'connectionId'] });
      for (const r of rows) if (r.connectionId && r.connectionId !== bindings.get(r.id)) taken.push(r.id);
    }
    return taken;
  }

  async #whyNot(agentId: string, connectionId: string): Promise<Refusal | null> {
    const row = await this.#db.em().findOne(Agent, agentId, { fields: ['status', 'connectionId'] });
    if (!row) return 'gone';
    if (row.connectionId !== connectionId) return 'replaced';
    if (!HOLDING.includes(row.status)) return 'ended';
    return null;
  }
}
