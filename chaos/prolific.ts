/**
 * The chaos run on the `prolific` provider: the local Prolific (fakes/prolific/server.ts) in the
 * harness's process, each simulated worker a participant with one Prolific session, and the
 * hitloop worker process killed while Prolific handles the study's PUBLISH and while it handles a
 * bonus's pay call (after the set-up, before hitloop recorded the payment). Afterwards every
 * participant completes at Prolific, all work is approved, bonuses are paid, and the ledger must
 * show every payment once.
 */
import type { Client } from '@temporalio/client';
import type { Settings } from '../config/settings.ts';
import { type FakeProlific, startFakeProlific } from '../fakes/prolific/server.ts';
import type { Database } from '../model/database.ts';
import { Bonus } from '../model/entities.ts';
import { studyInternalName } from '../providers/prolific/provider.ts';
import { createReviewer } from '../review/operator.ts';
import type { InvariantResult } from './invariants.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ChaosProlific {
  fake: FakeProlific;
  /** Environment of the worker and gateway processes. */
  env: NodeJS.ProcessEnv;
  /** Faults this part injected, as log lines. */
  faults: string[];
  /** The task-link parameters of a participant (their session starts on first use). */
  params(runId: string, workerId: string): Promise<Record<string, string>>;
  /** Kill the worker process while Prolific handles the first request whose path matches. */
  killWorkerDuring(method: string, path: RegExp, what: string): void;
  /** After the run: participants complete, work is approved, `bonuses` bonuses are paid (one with a kill). */
  settle(runId: string, bonuses: number): Promise<InvariantResult[]>;
  close(): Promise<void>;
}

export async function startChaosProlific(deps: {
  db: () => Database;
  client: () => Client;
  settings: () => Settings;
  killWorker: () => Promise<void>;
  log: (line: string) => void;
}): Promise<ChaosProlific> {
  const fake = await startFakeProlific({ balance: 100_000_000, processingMs: 100 });
  const faults: string[] = [];
  const sessions = new Map<string, Promise<Record<string, string>>>();
  const kills: Array<{ method: string; path: RegExp; what: string }> = [];
  fake.onRequest = async (method, path) => {
    const i = kills.findIndex((k) => k.method === method && k.path.test(path));
    if (i < 0) return;
    const [kill] = kills.splice(i, 1);
    deps.log(`  fault: worker killed while Prolific handles ${method} ${path} (${kill!.what})`);
    faults.push(`worker killed during ${kill!.what}`);
    await deps.killWorker();
  };

  async function studyOf(runId: string): Promise<string> {
    for (;;) {
      const study = [...fake.studies.values()].find((s) => s.internal_name === studyInternalName(runId) && s.status === 'ACTIVE');
      if (study) return study.id;
      await sleep(200);
    }
  }

  return {
    fake,
    env: { HITLOOP_PROLIFIC_URL: fake.url, HITLOOP_PROLIFIC_TOKEN: fake.token },
    faults,
    params(runId, workerId) {
      let session = sessions.get(workerId);
      if (!session) {
        session = (async () => {
          const studyId = await studyOf(runId);
          // Places follow launched units: wait for one to be free for this participant.
          for (;;) {
            try {
              const { submission } = fake.startParticipant(studyId, workerId);
              return { PROLIFIC_PID: workerId, STUDY_ID: studyId, SESSION_ID: submission.id };
            } catch {
              await sleep(500);
            }
          }
        })();
        sessions.set(workerId, session);
      }
      return session;
    },
    killWorkerDuring(method, path, what) {
      kills.push({ method, path, what });
    },
    async settle(runId, bonuses) {
      const studyId = await studyOf(runId);
      const code = fake.studies.get(studyId)!.completion_codes[0]!.code;
      for (const s of fake.submissions.values()) if (s.study_id === studyId && s.status === 'ACTIVE') fake.complete(s.id, code);
      const reviewer = createReviewer({ client: deps.client(), db: deps.db(), settings: deps.settings() });
      const retrying = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await work();
          } catch (err) {
            // "did not finish within 60 s": a killed worker's activity waits for its timeout; ask again.
            if (attempt >= 6 || !/did not finish within/.test((err as Error).message)) throw err;
            deps.log(`  ${what}: not finished yet, asking again`);
          }
        }
      };
      const waiting = await reviewer.list(runId);
      if (waiting.length > 0) await retrying('approve', () => reviewer.review(runId, { decision: 'approve', all: true }));
      const reviewed = await reviewer.list(runId, { includeReviewed: true });
      const units = reviewed.slice(0, bonuses);
      for (const [i, u] of units.entries()) {
        if (i === 0) killWorkerDuringPay();
        await retrying(`bonus ${i}`, () =>
          reviewer.bonus(runId, { unitId: u.unitId, amount: 0.05, reason: 'chaos bonus', requestKey: `chaos-bonus-${runId}-${i}` }),
        );
      }
      function killWorkerDuringPay(): void {
        kills.push({ method: 'POST', path: /^\/api\/v1\/bulk-bonus-payments\/[^/]+\/pay\/$/, what: 'a bonus pay call (after its set-up)' });
      }
      // Approvals at Prolific finish after PROCESSING.
      await sleep(500);

      const ledger = fake.ledger.filter((e) => e.study === studyId);
      const twice = [...fake.paymentsByRef()].filter(([, n]) => n > 1).map(([k, n]) => `${k} paid ${n} times`);
      const paidBonuses = await deps.db().em().find(Bonus, { taskRun: runId });
      const bonusPayments = ledger.filter((e) => e.kind === 'bonus');
      const bonusProblems = [
        ...paidBonuses.filter((b) => b.status !== 'paid').map((b) => `bonus ${b.requestKey} is ${b.status}`),
        ...(bonusPayments.length === units.length ? [] : [`${units.length} bonuses asked for, ${bonusPayments.length} paid at Prolific`]),
      ];
      const workers = new Set(reviewed.map((u) => u.providerWorkerId));
      const rewarded = new Set(ledger.filter((e) => e.kind === 'reward').map((e) => e.participant_id));
      const unrewarded = [...workers].filter((w) => !rewarded.has(w)).map((w) => `participant ${w} has approved work but no reward`);
      return [
        {
          name: 'Prolific: no payment made twice',
          ok: twice.length === 0,
          detail: `${ledger.length} payments in the ledger`,
          violations: twice,
        },
        {
          name: 'Prolific: every bonus paid exactly once',
          ok: bonusProblems.length === 0,
          detail: `${bonusPayments.length} bonus payments`,
          violations: bonusProblems,
        },
        {
          name: 'Prolific: approved participants rewarded',
          ok: unrewarded.length === 0,
          detail: `${rewarded.size} participants rewarded`,
          violations: unrewarded,
        },
      ];
    },
    close: () => fake.close(),
  };
}
