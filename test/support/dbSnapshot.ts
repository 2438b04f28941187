/**
 * A normalized view of everything the database holds about one task run, so that two runs of the
 * same inputs can be compared with `toEqual`: a crashed run against an uncrashed one.
 *
 * Normalized means: ids that differ between runs (run id, task name, agent ids chosen by the
 * workflow, worker row ids, Temporal run ids) become stable names; timestamps are dropped, only
 * whether each one is set is kept; rows are sorted by something both runs share.
 */
import { Agent, Assignment, OutboxMessage, ProviderCall, TaskRun, Unit, Worker } from '../../model/entities.ts';
import type { Database } from '../../model/database.ts';

export interface RunSnapshot {
  run: Record<string, unknown>;
  assignments: Array<Record<string, unknown>>;
  units: Array<Record<string, unknown>>;
  agents: Array<Record<string, unknown>>;
  /** What each completed agent sent, by unit. */
  submissions: Array<{ unit: string; worker: string; data: unknown }>;
  /** Every provider call about the run, grouped by what it was about (a unit, or the run). */
  providerCalls: Record<string, Array<Record<string, unknown>>>;
  /** Messages queued for each agent, in the order the agent sees them. */
  outbox: Record<string, Array<Record<string, unknown>>>;
}

const set = (value: unknown): boolean => value !== null && value !== undefined;

export async function dbSnapshot(db: Database, runId: string): Promise<RunSnapshot> {
  const em = db.em();
  const run = await em.findOneOrFail(TaskRun, runId, { populate: ['task'] });
  const assignments = await em.find(Assignment, { taskRun: runId }, { orderBy: { index: 'asc' } });
  const units = await em.find(Unit, { taskRun: runId }, { orderBy: { assignment: { index: 'asc' }, unitIndex: 'asc' } });
  const agents = await em.find(Agent, { taskRun: runId }, { orderBy: { createdAt: 'asc', id: 'asc' } });
  const workerIds = [...new Set([...units.map((u) => u.worker?.id), ...agents.map((a) => a.worker.id)].filter((id): id is string => !!id))];
  const workers = await em.find(Worker, { id: { $in: workerIds } });
  const calls = await em.find(ProviderCall, { target: { $like: `${runId}%` } }, { orderBy: { id: 'asc' } });
  const outbox = await em.find(OutboxMessage, { agent: { $in: agents.map((a) => a.id) } }, { orderBy: { seq: 'asc' } });

  // Stable names for ids that differ between runs; longest first so no id is replaced inside another.
  const names = new Map<string, string>();
  names.set(runId, 'RUN');
  names.set(run.task.getEntity().name, 'TASK');
  names.set(run.task.id, 'TASK_ID');
  for (const w of workers) names.set(w.id, `worker(${w.provider}:${w.providerWorkerId})`);
  // Agents are named by the unit they worked on and their turn on it: the same in both runs.
  const turns = new Map<string, number>();
  const unitOrder = new Map(units.map((u, i) => [u.id, i]));
  const agentsInUnitOrder = [...agents].sort((a, b) => (unitOrder.get(a.unit.id) ?? 0) - (unitOrder.get(b.unit.id) ?? 0));
  for (const a of agentsInUnitOrder) {
    const turn = turns.get(a.unit.id) ?? 0;
    turns.set(a.unit.id, turn + 1);
    names.set(a.id, `agent(${a.unit.id.replace(runId, 'RUN')}#${turn})`);
  }
  const ids = [...names.keys()].sort((a, b) => b.length - a.length);
  const rename = (value: unknown): unknown => {
    if (typeof value === 'string') return ids.reduce((s, id) => s.split(id).join(names.get(id)!), value);
    if (Array.isArray(value)) return value.map(rename);
    if (value && typeof value === 'object' && !(value instanceof Date)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rename(v)]));
    }
    return value;
  };
  const name = (id: string | null | undefined): string | null => (id ? (rename(id) as string) : null);

  const snapshot: RunSnapshot = {
    run: {
      status: run.status,
      endReason: run.endReason ?? null,
      failureReason: run.failureReason ?? null,
      workflowId: name(run.workflowId),
      providerType: run.providerType,
      blueprintType: run.blueprintType,
      reward: run.reward,
      assignmentCount: run.assignmentCount,
      config: rename(run.config),
      ended: set(run.endedAt),
    },
    assignments: assignments.map((a) => ({ name: name(a.id), index: a.index, data: a.data })),
    units: units.map((u) => ({
      name: name(u.id),
      assignment: name(u.assignment.id),
      unitIndex: u.unitIndex,
      kind: u.kind,
      status: u.status,
      pay: u.pay,
      providerUnitId: name(u.providerUnitId),
      launchBatch: u.launchBatch ?? null,
      worker: name(u.worker?.id),
      launched: set(u.launchedAt),
      assigned: set(u.assignedAt),
      completed: set(u.completedAt),
      ended: set(u.endedAt),
      // `<temporal run id>/<activity id>:<status before>`: only the status before is the same in both runs.
      expiredFrom: u.expiredBy ? u.expiredBy.slice(u.expiredBy.lastIndexOf(':') + 1) : null,
    })),
    agents: agentsInUnitOrder.map((a) => ({
      name: name(a.id),
      unit: name(a.unit.id),
      assignment: name(a.assignment.id),
      worker: name(a.worker.id),
      status: a.status,
      registrationKey: name(a.registrationKey),
      initData: rename(a.initData ?? null),
      state: rename(a.state ?? null),
      submission: rename(a.submission ?? null),
      submitKey: name(a.submitKey),
      started: set(a.startedAt),
      submitted: set(a.submittedAt),
      ended: set(a.endedAt),
    })),
    submissions: agentsInUnitOrder
      .filter((a) => set(a.submission))
      .map((a) => ({ unit: name(a.unit.id)!, worker: name(a.worker.id)!, data: rename(a.submission) })),
    providerCalls: {},
    outbox: {},
  };
  for (const call of calls) {
    const about = name(call.target)!;
    (snapshot.providerCalls[about] ??= []).push({
      provider: call.provider,
      operation: call.operation,
      requestKey: name(call.requestKey),
      payload: rename(call.payload),
    });
  }
  const outboxByAgent = new Map<string, OutboxMessage[]>();
  for (const m of outbox) outboxByAgent.set(m.agent.id, [...(outboxByAgent.get(m.agent.id) ?? []), m]);
  for (const a of agentsInUnitOrder) {
    snapshot.outbox[name(a.id)!] = (outboxByAgent.get(a.id) ?? []).map((m) => ({
      seq: m.seq,
      kind: m.kind,
      payload: rename(m.payload),
      dedupeKey: name(m.dedupeKey),
      acked: set(m.ackedAt),
    }));
  }
  return snapshot;
}
