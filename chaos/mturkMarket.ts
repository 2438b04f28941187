/**
 * The chaos run on the `mturk` provider (`--provider mturk`): a local MTurk in the harness process,
 * which the worker and gateway processes reach through HITLOOP_MTURK_ENDPOINT. Simulated workers act
 * like MTurk workers: accept a HIT before registering (the gateway checks it with GetAssignment),
 * post externalSubmit once hitloop stored their work, return the HIT when their unit ends otherwise.
 * After the run the harness approves everything and pays a few bonuses twice over, then checks what
 * only MTurk can show: no duplicate HIT, no lost submission, no double payment or bonus.
 */
import { startFakeMTurk, type FakeMTurkServer } from '../fakes/mturk/server.ts';
import type { Database } from '../model/database.ts';
import { ProviderCall, Unit } from '../model/entities.ts';
import { SUBMITTED_UNIT_STATUSES } from '../model/status.ts';
import { MTURK_ENDPOINT_ENV } from '../providers/mturk/client.ts';
import type { InvariantResult } from './invariants.ts';

const AWS_KEY = { AWS_ACCESS_KEY_ID: 'AKIDHITLOOPCHAOSKEY1', AWS_SECRET_ACCESS_KEY: 'hitloop-chaos-secret' };

/** How a simulated worker appears to the run's provider: the task link's parameters, and what the page does after. */
export interface WorkerMarket {
  /** Parameters for the next registration, or null when no work can be taken now (ask again later). */
  params(workerId: string): Record<string, string> | null;
  /** The unit of a registration made with `params` ended with `status`. */
  ended(params: Record<string, string>, status: string, data: Record<string, unknown> | null): void;
  /** A registration made with `params` was refused: true when the worker gave their place back and needs new parameters. */
  refused?(params: Record<string, string>): boolean;
}

/** The mock provider's market: a plain worker_id, nothing afterwards. */
export const MOCK_MARKET: WorkerMarket = {
  params: (workerId) => ({ worker_id: workerId }),
  ended: () => undefined,
};

export interface ChaosMTurk {
  fake: FakeMTurkServer;
  /** Environment of the worker and gateway processes. */
  env: NodeJS.ProcessEnv;
  market(runId: () => string): WorkerMarket;
  check(db: Database, runId: string, bonusUnits: readonly string[]): Promise<InvariantResult[]>;
  close(): Promise<void>;
}

/** MTurk worker ids are capital letters and digits. */
export const mturkWorkerId = (workerId: string): string => `A${workerId.replace(/[^A-Za-z0-9]/g, '').toUpperCase()}`;

export async function startChaosMTurk(): Promise<ChaosMTurk> {
  const fake = await startFakeMTurk({ accessKeyIds: [AWS_KEY.AWS_ACCESS_KEY_ID], balance: 1_000_000 });
  const mturk = fake.mturk;
  const hitsOf = (runId: string) => [...mturk.hits.values()].filter((h) => h.Question.includes(`/task/${encodeURIComponent(runId)}?`));

  return {
    fake,
    env: { ...AWS_KEY, [MTURK_ENDPOINT_ENV]: fake.url },
    market: (runId) => ({
      params(workerId) {
        const id = mturkWorkerId(workerId);
        // MTurk lists the HITs a worker may still accept: assignable, and not worked by them before.
        const worked = new Set([...mturk.assignments.values()].filter((a) => a.WorkerId === id && a.AssignmentStatus !== 'Accepted').map((a) => a.HITId));
        const hit = hitsOf(runId()).find((h) => h.HITStatus === 'Assignable' && !worked.has(h.HITId));
        if (!hit) return null;
        const a = mturk.accept(hit.HITId, id);
        return { assignmentId: a.AssignmentId, hitId: a.HITId, workerId: id, hitloop_mturk: 'sandbox', turkSubmitTo: fake.url };
      },
      ended(params, status, data) {
        const a = mturk.assignments.get(params.assignmentId!);
        if (!a || a.AssignmentStatus !== 'Accepted') return;
        if (status === 'completed') mturk.externalSubmit({ assignmentId: a.AssignmentId, ...Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, String(v)])) });
        else mturk.returnAssignment(a.AssignmentId);
      },
      // The task page asks a refused MTurk worker to return the HIT. One who kept it held a slot for
      // nothing: when the run's last unit was one that worker had held before (a worker gets an item
      // once, docs/design.md §3), the workers who could take it found no HIT to accept and the run
      // never ended (the CI timeout of seed 1570447683).
      refused(params) {
        const a = mturk.assignments.get(params.assignmentId!);
        if (a?.AssignmentStatus === 'Accepted') mturk.returnAssignment(a.AssignmentId);
        return true;
      },
    }),
    async check(db, runId, bonusUnits) {
      const units = await db.em().find(Unit, { taskRun: runId }, { fields: ['id', 'status', 'providerUnitId'] });
      const hits = hitsOf(runId);
      const out: InvariantResult[] = [];

      // A unit has its launch HIT, plus one HIT for each time it was offered again on a new HIT (its HIT full).
      const unitIds = new Set(units.map((u) => u.id));
      const reoffers = (await db.em().find(ProviderCall, { provider: 'mturk', operation: 'reofferUnit' }))
        .map((r) => r.payload as { unitId?: string; how?: string })
        .filter((r) => unitIds.has(String(r.unitId)));
      const newHits = new Map<string, number>();
      for (const r of reoffers) if (r.how === 'new HIT') newHits.set(String(r.unitId), (newHits.get(String(r.unitId)) ?? 0) + 1);
      const duplicates: string[] = [];
      const byAnnotation = new Map<string, string[]>();
      for (const h of hits) byAnnotation.set(h.RequesterAnnotation ?? '', [...(byAnnotation.get(h.RequesterAnnotation ?? '') ?? []), h.HITId]);
      for (const [unitId, ids] of byAnnotation) {
        if (ids.length > 1 + (newHits.get(unitId) ?? 0)) duplicates.push(`unit ${unitId} has ${ids.length} HITs (${newHits.get(unitId) ?? 0} made to offer it again): ${ids.join(', ')}`);
      }
      for (const u of units) {
        const ids = byAnnotation.get(u.id) ?? [];
        if (u.providerUnitId && !ids.includes(u.providerUnitId)) duplicates.push(`unit ${u.id} names HIT ${u.providerUnitId}, not its annotated HIT ${ids.join(', ') || '(none)'}`);
      }
      const extended = hits.reduce((n, h) => n + h.MaxAssignments - 1, 0);
      out.push({
        name: 'MTurk: no duplicate HIT',
        ok: duplicates.length === 0,
        detail: `${hits.length} HITs for ${units.length} units; ${reoffers.length} released units offered again (${extended} assignments added to HITs)`,
        violations: duplicates.slice(0, 20),
      });

      const submittedUnits = units.filter((u) => SUBMITTED_UNIT_STATUSES.includes(u.status)).length;
      const runHits = new Set(hits.map((h) => h.HITId));
      const submittedAssignments = [...mturk.assignments.values()].filter((a) => runHits.has(a.HITId) && a.AssignmentStatus !== 'Accepted');
      out.push({
        name: 'MTurk: no lost submission',
        ok: submittedAssignments.length === submittedUnits,
        detail: `${submittedUnits} units submitted in hitloop, ${submittedAssignments.length} assignments submitted at MTurk`,
        violations: submittedAssignments.length === submittedUnits ? [] : [`${submittedUnits} != ${submittedAssignments.length}`],
      });

      const paid = mturk.ledger.filter((e) => runHits.has(e.hitId));
      const violations: string[] = [];
      const rewards = new Map<string, number>();
      for (const e of paid.filter((p) => p.kind === 'reward')) rewards.set(e.assignmentId, (rewards.get(e.assignmentId) ?? 0) + 1);
      for (const [assignmentId, n] of rewards) if (n > 1) violations.push(`assignment ${assignmentId} paid its reward ${n} times`);
      const notApproved = submittedAssignments.filter((a) => a.AssignmentStatus !== 'Approved').map((a) => a.AssignmentId);
      if (notApproved.length > 0) violations.push(`assignments submitted but not approved after approve --all: ${notApproved.join(', ')}`);
      const bonuses = paid.filter((p) => p.kind === 'bonus');
      if (bonuses.length !== bonusUnits.length) violations.push(`${bonusUnits.length} bonuses asked for (each twice), ${bonuses.length} paid`);
      out.push({
        name: 'MTurk: no double payment or bonus',
        ok: violations.length === 0,
        detail: `${rewards.size} rewards, ${bonuses.length} bonuses paid for ${bonusUnits.length} bonus requests sent twice`,
        violations: violations.slice(0, 20),
      });
      return out;
    },
    close: () => fake.close(),
  };
}
