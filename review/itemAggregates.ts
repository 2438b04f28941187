/**
 * A run's items with their aggregated answers (docs/design.md §3), read from the database: the
 * (item, worker, label) votes of every submitted unit, aggregated per field named in
 * `aggregate.fields` with the configured method. Gold submissions (known answers) seed
 * Dawid-Skene's worker estimates. Items with no submission are listed as unaggregated.
 * Used by the aggregation activity, `hitloop export --aggregated` and `review`.
 */
import { aggregate, labelOf, type AggregationMethod, type AggregationResult, type Vote } from '../aggregation/index.ts';
import type { AggregateConfig, TaskRunConfig } from '../config/taskRunConfig.ts';
import type { EntityManager } from '../model/database.ts';
import { Agent, Assignment, TaskRun } from '../model/entities.ts';
import { SUBMITTED_AGENT_STATUSES } from '../model/status.ts';

/** Submitted work that counts as an answer: a rejected unit's answer is not used. */
const COUNTED = SUBMITTED_AGENT_STATUSES.filter((s) => s !== 'rejected');

export interface FieldAggregate {
  label: string | null;
  confidence: number;
  votes: Record<string, number>;
  /** More than one label here: a tie (majority). */
  tied: string[];
}

export interface AggregatedItem {
  assignmentId: string;
  index: number;
  data: unknown;
  status: 'aggregated' | 'unaggregated';
  /** Lowest confidence over the fields; null when unaggregated. */
  confidence: number | null;
  fields: Record<string, FieldAggregate>;
  /** Worker ids of the item's submitted units. */
  workers: string[];
}

export interface WorkerQuality {
  workerId: string;
  provider: string;
  providerWorkerId: string;
  items: number;
  /** Mean over the fields of the share of the worker's labels equal to the aggregated label. */
  agreement: number;
  /** Mean over the fields of the estimated accuracy (Dawid-Skene; majority: = agreement). */
  accuracy: number;
}

export interface RunVotes {
  /** Per field: votes on the run's items (item = assignment id) and on gold items (item = `gold:<n>`). */
  votes: Map<string, Vote[]>;
  /** Per field: the known label of each gold item answered. */
  gold: Map<string, Map<string, string>>;
  workerNames: Map<string, { provider: string; providerWorkerId: string }>;
}

/** Every counted vote of the run (all items, or one item), per aggregated field. */
export async function loadRunVotes(em: EntityManager, runId: string, aggregateConfig: AggregateConfig, onlyAssignment?: string): Promise<RunVotes> {
  const withGold = aggregateConfig.method === 'dawid_skene' && onlyAssignment === undefined;
  const agents = await em.find(
    Agent,
    {
      taskRun: runId,
      status: { $in: [...COUNTED] },
      unit: { kind: { $in: withGold ? ['normal', 'gold'] : ['normal'] } },
      ...(onlyAssignment ? { assignment: onlyAssignment } : {}),
    },
    { populate: ['unit', 'assignment', 'worker'], orderBy: { assignment: { index: 'asc' }, unit: { unitIndex: 'asc' } } },
  );
  const votes = new Map(aggregateConfig.fields.map((f) => [f, [] as Vote[]]));
  const gold = new Map(aggregateConfig.fields.map((f) => [f, new Map<string, string>()]));
  const workerNames = new Map<string, { provider: string; providerWorkerId: string }>();
  for (const agent of agents) {
    const worker = agent.worker.getEntity();
    workerNames.set(worker.id, { provider: worker.provider, providerWorkerId: worker.providerWorkerId });
    const submission = (agent.submission ?? {}) as Record<string, unknown>;
    const isGold = agent.unit.getEntity().kind === 'gold';
    const data = agent.assignment.getEntity().data as { gold_item?: unknown; expected?: Record<string, unknown> };
    const item = isGold ? `gold:${String(data.gold_item)}` : agent.assignment.id;
    for (const field of aggregateConfig.fields) {
      const label = labelOf(submission[field]);
      if (label === null) continue;
      votes.get(field)!.push({ item, worker: worker.id, label });
      const known = isGold ? labelOf(data.expected?.[field]) : null;
      if (known !== null) gold.get(field)!.set(item, known);
    }
  }
  return { votes, gold, workerNames };
}

export function aggregateVotes(method: AggregationMethod, runVotes: RunVotes): Map<string, AggregationResult> {
  return new Map([...runVotes.votes].map(([field, votes]) => [field, aggregate(method, votes, runVotes.gold.get(field))]));
}

/** One item's aggregate from per-field results (absent from all of them: unaggregated). */
export function itemFromResults(
  assignment: Pick<Assignment, 'id' | 'index' | 'data'>,
  results: ReadonlyMap<string, AggregationResult>,
): AggregatedItem {
  const fields: Record<string, FieldAggregate> = {};
  const workers = new Set<string>();
  for (const [field, result] of results) {
    const found = result.items.find((i) => i.item === assignment.id);
    if (!found) continue;
    fields[field] = { label: found.label, confidence: found.confidence, votes: found.votes, tied: found.tied };
    for (const w of found.workers) workers.add(w);
  }
  const confidences = Object.values(fields).map((f) => f.confidence);
  const complete = results.size > 0 && confidences.length === results.size;
  return {
    assignmentId: assignment.id,
    index: assignment.index,
    data: assignment.data,
    status: complete ? 'aggregated' : 'unaggregated',
    confidence: complete ? Math.min(...confidences) : null,
    fields,
    workers: [...workers],
  };
}

export class AggregationNotConfigured extends Error {
  override name = 'AggregationNotConfigured';
}

/** Every item of the run (data order) with its aggregate, and each worker's agreement and accuracy. */
export async function aggregateRun(em: EntityManager, runId: string): Promise<{ items: AggregatedItem[]; workers: WorkerQuality[]; method: AggregationMethod }> {
  const run = await em.findOne(TaskRun, runId);
  if (!run) throw new AggregationNotConfigured(`there is no task run "${runId}" in the database; \`hitloop runs\` lists the runs`);
  const config = run.config as unknown as TaskRunConfig;
  if (!config.aggregate) {
    throw new AggregationNotConfigured(`run ${runId} has no aggregate key in its config (e.g. aggregate: { fields: [label], method: dawid_skene }); nothing to aggregate`);
  }
  const runVotes = await loadRunVotes(em, runId, config.aggregate);
  const results = aggregateVotes(config.aggregate.method, runVotes);
  // The data's items only: screening and gold units have assignments of their own after them.
  const assignments = await em.find(
    Assignment,
    { taskRun: runId, index: { $lt: run.assignmentCount } },
    { orderBy: { index: 'asc' }, fields: ['id', 'index', 'data'] },
  );
  const items = assignments.map((a) => itemFromResults(a, results));
  const perWorker = new Map<string, { items: number; agreement: number; accuracy: number }>();
  for (const result of results.values()) {
    for (const w of result.workers) {
      const s = perWorker.get(w.worker) ?? { items: 0, agreement: 0, accuracy: 0 };
      s.items = Math.max(s.items, w.items);
      s.agreement += w.agreement / results.size;
      s.accuracy += w.accuracy / results.size;
      perWorker.set(w.worker, s);
    }
  }
  const workers = [...perWorker].map(([workerId, s]) => ({
    workerId,
    provider: runVotes.workerNames.get(workerId)?.provider ?? '',
    providerWorkerId: runVotes.workerNames.get(workerId)?.providerWorkerId ?? workerId,
    ...s,
  }));
  return { items, workers, method: config.aggregate.method };
}
