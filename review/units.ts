/**
 * The submitted units of a run, one row per unit with everything an operator reviews or exports:
 * the assignment's input, the worker, the agent's timings, the submitted data, the review and the
 * bonuses. Read in pages in data order, so a run of any size is listed in bounded memory.
 */
import type { EntityManager } from '../model/database.ts';
import { Agent, Bonus, Review, type AgentStatus, type ReviewDecision, type UnitKind, type UnitStatus } from '../model/entities.ts';
import { SUBMITTED_AGENT_STATUSES } from '../model/status.ts';

export interface SubmittedUnit {
  runId: string;
  assignmentId: string;
  assignmentIndex: number;
  assignmentData: unknown;
  unitId: string;
  unitIndex: number;
  unitKind: UnitKind;
  unitStatus: UnitStatus;
  pay: number;
  agentId: string;
  agentStatus: AgentStatus;
  workerId: string;
  provider: string;
  providerWorkerId: string;
  /** When the worker was given the unit, started it (all partners present) and submitted it. */
  acceptedAt: string;
  startedAt: string | null;
  submittedAt: string | null;
  /** Seconds from acceptance to submission. */
  durationSeconds: number | null;
  review: { decision: ReviewDecision; note: string | null; requestKey: string; reviewedAt: string } | null;
  bonuses: Array<{ amount: number; reason: string; status: string; requestKey: string }>;
  data: unknown;
}

export interface SubmittedUnitFilter {
  /** Default: every submitted status. `['completed']` lists the units awaiting review. */
  agentStatuses?: readonly AgentStatus[];
  /** Default: normal units only; screening and gold units are quality checks, not collected data. */
  kinds?: readonly UnitKind[];
  /** hitloop worker id (`w-...`) or the worker's id at the provider. */
  worker?: string;
  unitIds?: readonly string[];
}

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** One page of submitted units, ordered by assignment index then unit index (`by: 'worker'`: by worker first). */
export async function submittedUnitsPage(
  em: EntityManager,
  runId: string,
  filter: SubmittedUnitFilter,
  page: { offset: number; limit: number; by?: 'item' | 'worker' },
): Promise<SubmittedUnit[]> {
  const inItemOrder = { assignment: { index: 'asc' }, unit: { unitIndex: 'asc' }, id: 'asc' } as const;
  const where = {
    taskRun: runId,
    status: { $in: [...(filter.agentStatuses ?? SUBMITTED_AGENT_STATUSES)] },
    unit: { kind: { $in: [...(filter.kinds ?? ['normal'])] }, ...(filter.unitIds ? { id: { $in: [...filter.unitIds] } } : {}) },
    ...(filter.worker ? { worker: { $or: [{ id: filter.worker }, { providerWorkerId: filter.worker }] } } : {}),
  };
  const agents = await em.find(Agent, where as never, {
    populate: ['unit', 'assignment', 'worker'],
    orderBy: page.by === 'worker' ? [{ worker: { providerWorkerId: 'asc', id: 'asc' } }, inItemOrder] : inItemOrder,
    offset: page.offset,
    limit: page.limit,
  });
  if (agents.length === 0) return [];
  const agentIds = agents.map((a) => a.id);
  const reviews = await em.find(Review, { agent: { $in: agentIds } }, { orderBy: { createdAt: 'asc' } });
  const bonuses = await em.find(Bonus, { agent: { $in: agentIds } }, { orderBy: { createdAt: 'asc' } });
  const reviewOf = new Map(reviews.map((r) => [r.agent.id, r]));
  return agents.map((a) => {
    const unit = a.unit.getEntity();
    const assignment = a.assignment.getEntity();
    const worker = a.worker.getEntity();
    const review = reviewOf.get(a.id);
    return {
      runId,
      assignmentId: assignment.id,
      assignmentIndex: assignment.index,
      assignmentData: assignment.data,
      unitId: unit.id,
      unitIndex: unit.unitIndex,
      unitKind: unit.kind,
      unitStatus: unit.status,
      pay: Number(unit.pay),
      agentId: a.id,
      agentStatus: a.status,
      workerId: worker.id,
      provider: worker.provider,
      providerWorkerId: worker.providerWorkerId,
      acceptedAt: a.createdAt.toISOString(),
      startedAt: iso(a.startedAt),
      submittedAt: iso(a.submittedAt),
      durationSeconds: a.submittedAt ? Math.round((a.submittedAt.getTime() - a.createdAt.getTime()) / 100) / 10 : null,
      review: review
        ? {
            decision: review.decision,
            note: review.note ?? null,
            requestKey: review.requestKey,
            reviewedAt: review.createdAt.toISOString(),
          }
        : null,
      bonuses: bonuses
        .filter((b) => b.agent.id === a.id)
        .map((b) => ({ amount: Number(b.amount), reason: b.reason, status: b.status, requestKey: b.requestKey })),
      data: a.submission ?? null,
    };
  });
}

/** Every submitted unit matching `filter`, page by page. */
export async function* submittedUnits(
  em: EntityManager,
  runId: string,
  filter: SubmittedUnitFilter = {},
  pageSize = 500,
): AsyncGenerator<SubmittedUnit> {
  for (let offset = 0; ; offset += pageSize) {
    const page = await submittedUnitsPage(em, runId, filter, { offset, limit: pageSize });
    yield* page;
    if (page.length < pageSize) return;
    em.clear();
  }
}
