/**
 * A worker's record, shown beside their work in review: how much they submitted, how it was
 * reviewed (approval rate over every run) and, for a run with gold units, how many golds they got
 * right (from the run's gold qualifications, docs/design.md §3).
 */
import { goldQualificationNames, type TaskRunConfig } from '../config/taskRunConfig.ts';
import type { EntityManager } from '../model/database.ts';
import { TaskRun, Worker } from '../model/entities.ts';
import { SUBMITTED_AGENT_STATUSES } from '../model/status.ts';
import { listGrants } from '../qualifications/grants.ts';

export interface WorkerHistory {
  workerId: string;
  provider: string;
  providerWorkerId: string;
  blocked: boolean;
  submitted: number;
  approved: number;
  rejected: number;
  softRejected: number;
  approvalRate: number | null;
  goldScored: number;
  goldAccuracy: number | null;
}

const ratio = (part: number, whole: number): number | null => (whole > 0 ? Math.round((part / whole) * 1000) / 1000 : null);

/** The history of each named worker, in the order given; gold accuracy is the run's. */
export async function workerHistories(em: EntityManager, runId: string, workerIds: readonly string[]): Promise<WorkerHistory[]> {
  const ids = [...new Set(workerIds)];
  if (ids.length === 0) return [];
  const workers = await em.find(Worker, { id: { $in: ids } });
  const rows: Array<{ worker_id: string; status: string; n: number | string }> = await em
    .getConnection()
    .execute(
      `select worker_id, status, count(*) as n from agent where worker_id in (${ids.map(() => '?').join(', ')}) and status in (${SUBMITTED_AGENT_STATUSES.map(() => '?').join(', ')}) group by worker_id, status`,
      [...ids, ...SUBMITTED_AGENT_STATUSES],
    );
  const counts = new Map<string, Record<string, number>>();
  for (const row of rows) {
    const c = counts.get(row.worker_id) ?? {};
    c[row.status] = Number(row.n);
    counts.set(row.worker_id, c);
  }
  const run = await em.findOne(TaskRun, runId, { fields: ['config'] });
  const config = run?.config as Partial<TaskRunConfig> | undefined;
  const gold = config?.gold && config.task_name ? goldQualificationNames(config as TaskRunConfig) : null;
  const byId = new Map(workers.map((w) => [w.id, w]));
  const histories: WorkerHistory[] = [];
  for (const id of ids) {
    const worker = byId.get(id);
    if (!worker) continue;
    const c = counts.get(id) ?? {};
    const approved = c.approved ?? 0;
    const rejected = c.rejected ?? 0;
    const softRejected = c.soft_rejected ?? 0;
    let correct = 0;
    let incorrect = 0;
    if (gold) {
      for (const grant of await listGrants(em, { workerId: id })) {
        if (grant.qualification === gold.correct) correct = grant.value;
        if (grant.qualification === gold.incorrect) incorrect = grant.value;
      }
    }
    histories.push({
      workerId: id,
      provider: worker.provider,
      providerWorkerId: worker.providerWorkerId,
      blocked: worker.blocked,
      submitted: (c.completed ?? 0) + approved + rejected + softRejected,
      approved,
      rejected,
      softRejected,
      approvalRate: ratio(approved, approved + rejected + softRejected),
      goldScored: correct + incorrect,
      goldAccuracy: ratio(correct, correct + incorrect),
    });
  }
  return histories;
}
