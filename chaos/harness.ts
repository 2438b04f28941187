/**
 * The chaos run: a task run of N assignments worked by M simulated workers over the real protocol,
 * while the hitloop worker process, a gateway process and the Temporal dev server are killed with
 * SIGKILL at seeded-random moments and started again (Temporal on its own database file). At the
 * end, the invariants of chaos/invariants.ts are checked from the database and from Temporal.
 *
 * A process that dies without being killed by the harness is restarted and reported: it is a
 * finding, not part of the plan.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Unit, TaskRun } from '../model/entities.ts';
import { SUBMITTED_UNIT_STATUSES, isFinalTaskRunStatus } from '../model/status.ts';
import { taskRunWorkflowId } from '../workflows/definitions.ts';
import { saveRunHistories, setSaveHistories, type SavedHistory } from '../bench/histories.ts';
import { runDirectWorker } from './directWorker.ts';
import { describeFault, planFaults, type FaultKind, type InjectedFault, type PlannedFault } from './faults.ts';
import { checkInvariants, type InvariantResult } from './invariants.ts';
import { Ledger } from './ledger.ts';
import type { ManagedProcess, UnexpectedExit } from './managedProcess.ts';
import { SeededRandom } from './random.ts';
import { FINISH_AFTER_END_MS, runSimulatedWorker, type WorkerBehaviour } from './simulatedWorker.ts';
import { startChaosMTurk, type ChaosMTurk } from './mturkMarket.ts';
import { startChaosProlific } from './prolific.ts';
import { startStack, type Stack } from './stack.ts';
import { createReviewer } from '../review/operator.ts';

export interface ChaosOptions {
  seed: number;
  assignments: number;
  /** Simulated crowd workers. */
  workers: number;
  /** Kills of each process kind (worker, gateway, Temporal). */
  killsPerKind: number;
  /** Gateway processes; agents of a killed one reconnect to another (or to it, restarted). */
  gateways: number;
  /** `gateway`: workers speak the WebSocket protocol; `direct`: they call Temporal (no gateway to kill). */
  mode: 'gateway' | 'direct';
  dialect: 'postgresql' | 'sqlite';
  /**
   * The run's provider: `mock`, `mturk` on a local MTurk (gateway mode only), or `prolific`: a study at
   * the local Prolific (chaos/prolific.ts), with bonuses paid after the run.
   */
  provider: 'mock' | 'mturk' | 'prolific';
  /** Give up waiting for the run to end after this long. */
  timeoutMs: number;
  /** Keep the run's workflow histories as replay fixtures (test/fixtures/histories/chaos-*.json). */
  saveHistories: boolean;
  /** Directory for logs and the Temporal database (default: a new temp directory, kept). */
  workDir?: string;
  /** The run's reconnect window: abandoned units come back to the pool after it. */
  reconnectWindowSeconds: number;
  /** Continue-as-new thresholds of the TaskRun workflow, low enough to happen under faults. */
  updateLimit: number;
  /** Longest time a killed process stays down before its restart. */
  maxDownMs: number;
  /** Bonuses paid after a `prolific` run, the first with the worker killed during the pay call. */
  bonuses?: number;
  log: (line: string) => void;
}

export const DEFAULT_CHAOS_OPTIONS: Omit<ChaosOptions, 'seed' | 'log'> = {
  assignments: 200,
  workers: 24,
  killsPerKind: 3,
  gateways: 2,
  mode: 'gateway',
  dialect: 'postgresql',
  provider: 'mock',
  timeoutMs: 30 * 60_000,
  saveHistories: false,
  reconnectWindowSeconds: 30,
  updateLimit: 400,
  maxDownMs: 4000,
};

export interface ChaosReport {
  seed: number;
  options: Omit<ChaosOptions, 'log'>;
  runId: string;
  passed: boolean;
  durationS: number;
  planned: PlannedFault[];
  faults: InjectedFault[];
  unexpectedExits: Array<Omit<UnexpectedExit, 'at'> & { at: string }>;
  invariants: InvariantResult[];
  /** Kills made from inside the provider's calls (the `prolific` provider's). */
  providerFaults: string[];
  counters: Record<string, number>;
  anomalies: string[];
  acknowledgedSubmissions: number;
  continuedAsNew: number;
  savedHistories: SavedHistory[];
  workDir: string;
  rerun: string;
}

export function rerunCommand(o: Omit<ChaosOptions, 'log'>): string {
  return (
    `npm run chaos -- --seed ${o.seed} --assignments ${o.assignments} --workers ${o.workers} --kills ${o.killsPerKind} ` +
    `--gateways ${o.gateways} --mode ${o.mode} --dialect ${o.dialect} --provider ${o.provider} --max-down-seconds ${o.maxDownMs / 1000} ` +
    `--reconnect-window ${o.reconnectWindowSeconds} --update-limit ${o.updateLimit}` +
    (o.provider === 'prolific' ? ` --bonuses ${o.bonuses ?? 0}` : '')
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function chaosConfig(o: Omit<ChaosOptions, 'log'>): Record<string, unknown> {
  return {
    task_name: `chaos-${o.seed}`,
    task_title: 'Chaos run: label a sentence',
    task_description: 'Say whether the sentence is positive, and comment.',
    task_tags: ['chaos'],
    task_reward: 0.1,
    provider:
      o.provider === 'mturk' ? { type: 'mturk', sandbox: true } : o.provider === 'prolific' ? { type: 'prolific', workspace_id: 'ws-fake' } : 'mock',
    // Long enough that no worker slowed by the faults times out. Through the gateway, an abandoned unit
    // returns after the reconnect window; direct workers have no socket to drop, so theirs time out.
    assignment_duration_seconds: o.mode === 'gateway' ? 900 : 60,
    reconnect_window_seconds: o.reconnectWindowSeconds,
    no_submission_patience_seconds: 3600,
    blueprint: {
      type: 'static-form',
      fields: [
        { name: 'label', type: 'select', options: ['positive', 'negative'] },
        { name: 'comment', type: 'textarea', required: false },
      ],
    },
    data: Array.from({ length: o.assignments }, (_, i) => ({ text: `chaos sentence ${i}` })),
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log, ...o } = options;
  const started = Date.now();
  const rng = new SeededRandom(o.seed);
  const kinds: FaultKind[] = o.mode === 'gateway' ? ['worker', 'gateway', 'temporal'] : ['worker', 'temporal'];
  const planned = planFaults(rng.fork(), { units: o.assignments, killsPerKind: o.killsPerKind, gateways: o.gateways, kinds, maxDownMs: o.maxDownMs });
  const workDir = o.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `hitloop-chaos-${o.seed}-`));
  log(`chaos run: seed ${o.seed}, ${o.assignments} assignments, ${o.workers} workers, ${o.mode} mode on ${o.dialect}; logs in ${workDir}`);
  for (const f of planned) log(`  planned ${describeFault(f)}`);

  if (o.provider === 'mturk' && o.mode !== 'gateway') throw new Error('the chaos run on mturk needs --mode gateway (MTurk workers come through task pages)');
  const mturk: ChaosMTurk | null = o.provider === 'mturk' ? await startChaosMTurk() : null;
  /** Processes down on purpose right now: the supervisor leaves them alone. */
  const downOnPurpose = new Set<ManagedProcess | 'temporal'>();
  let stopping = false;
  /**
   * Start a killed process again, and again after a start that fails (not ready within its timeout on
   * a loaded host: the start kills it and throws). One failed restart used to leave the worker dead for
   * good: submissions were never recorded, agents stayed `in_task` and the run waited until its timeout.
   */
  const startAgain = async (p: ManagedProcess): Promise<void> => {
    for (let attempt = 1; !stopping && !p.running; attempt++) {
      try {
        await p.start();
      } catch (err) {
        log(`  !! starting ${p.spec.name} failed (attempt ${attempt}), trying again: ${(err as Error).message.split('\n')[0]}`);
        await sleep(1000);
      }
    }
  };
  const startedStack: { stack?: Stack } = {};
  const prolific =
    o.provider === 'prolific'
      ? await startChaosProlific({
          db: () => startedStack.stack!.db,
          client: () => startedStack.stack!.client,
          settings: () => startedStack.stack!.settings,
          log,
          async killWorker() {
            const p = startedStack.stack!.workers[0]!;
            downOnPurpose.add(p);
            await p.kill9();
            // Back under the supervisor before the restart: a restart that dies too (Temporal down at the
            // same moment) is restarted again by it, not left dead with the run waiting for ever. Not awaited:
            // the fault schedule goes on meanwhile; a failed start is logged below.
            void sleep(1000).then(() => {
              downOnPurpose.delete(p);
              return startAgain(p);
            });
          },
        })
      : undefined;
  const providerEnv = mturk?.env ?? prolific?.env;
  const stack = await startStack({ workDir, dialect: o.dialect, logLevel: 'info', workerEnv: providerEnv, gatewayEnv: providerEnv });
  startedStack.stack = stack;
  const ledger = new Ledger();
  const injected: InjectedFault[] = [];
  const unexpected: UnexpectedExit[] = [];
  let runEnded = false;
  let runId = '';
  let completed = 0;
  /** Units held or submitted: what the registration gate counts (chaos/faults.ts). */
  let handedOut = 0;
  let savedHistories: SavedHistory[] = [];
  let continuedAsNew = 0;
  let invariants: InvariantResult[];

  const supervise = (p: ManagedProcess): void => {
    p.onUnexpectedExit = (exit) => {
      unexpected.push(exit);
      log(`  !! ${exit.name} exited on its own (code ${exit.code}, signal ${exit.signal}); restarting it. Last output:\n${exit.tail.slice(-8).join('\n')}`);
      if (stopping || downOnPurpose.has(p)) return;
      void sleep(1000).then(() => startAgain(p));
    };
  };

  try {
    supervise(await stack.addWorker());
    if (o.mode === 'gateway') for (let i = 0; i < o.gateways; i++) supervise(await stack.addGateway());
    const temporalWatch = setInterval(() => {
      if (stopping || downOnPurpose.has('temporal') || stack.temporal.pid !== undefined) return;
      unexpected.push({ name: 'temporal', at: new Date(), code: null, signal: null, tail: [`see ${stack.temporal.logFile}`] });
      log('  !! the Temporal dev server exited on its own; restarting it');
      downOnPurpose.add('temporal');
      // A timer callback cannot wait; a failed restart is logged (it rejected unhandled before).
      void stack.temporal
        .start()
        .catch((err: unknown) => log(`  !! restarting the Temporal dev server failed: ${(err as Error).message}`))
        .finally(() => downOnPurpose.delete('temporal'));
    }, 1000);
    temporalWatch.unref();

    prolific?.killWorkerDuring('POST', /^\/api\/v1\/studies\/[^/]+\/transition\/$/, "the study's PUBLISH (after its launch)");
    ({ runId } = await stack.operator.launch(chaosConfig(o), { workflowOptions: { updateLimit: o.updateLimit } }));
    log(`run ${runId} launched (workflow ${taskRunWorkflowId(runId)})`);

    // Progress, from the database (PostgreSQL / SQLite are never killed).
    const progress = setInterval(() => {
      // Best effort: a progress figure a tick late changes nothing.
      const em = stack.db.em();
      void Promise.all([
        em.count(Unit, { taskRun: runId, status: 'completed' }),
        em.count(Unit, { taskRun: runId, status: { $in: ['assigned', ...SUBMITTED_UNIT_STATUSES] } }),
      ])
        .then(([done, out]) => {
          completed = done;
          handedOut = out;
        })
        .catch(() => undefined);
    }, 250);
    progress.unref();

    let nextFault = 0;
    const gate = async (): Promise<void> => {
      while (!runEnded && nextFault < planned.length && handedOut >= planned[nextFault]!.holdAtHandedOut) await sleep(100);
    };

    const injector = (async () => {
      for (const f of planned) {
        while (completed < f.afterCompleted && !runEnded) await sleep(100);
        if (runEnded) break;
        await sleep(f.delayMs);
        const killedAt = new Date();
        const completedAtKill = completed;
        let pid: number | undefined;
        if (f.kind === 'temporal') {
          pid = stack.temporal.pid;
          downOnPurpose.add('temporal');
          await stack.temporal.kill9();
          await sleep(f.downMs);
          await stack.temporal.start();
          downOnPurpose.delete('temporal');
        } else {
          const p = f.kind === 'worker' ? stack.workers[0]! : stack.gateways[f.target]!;
          pid = p.pid;
          downOnPurpose.add(p);
          await p.kill9();
          await sleep(f.downMs);
          await startAgain(p);
          downOnPurpose.delete(p);
        }
        const fault: InjectedFault = { ...f, killedAt: killedAt.toISOString(), completedAtKill, pid, backAfterMs: Date.now() - killedAt.getTime() };
        injected.push(fault);
        nextFault += 1;
        log(`  fault ${describeFault(fault)}`);
      }
    })();

    const params = prolific ? (workerId: string) => prolific.params(runId, workerId) : undefined;
    const env = {
      runId,
      gatewayUrls: stack.gateways.map((g) => stack.gatewayUrl(g)),
      ledger,
      gate,
      stopped: () => runEnded,
      params,
      ...(mturk ? { market: mturk.market(() => runId) } : {}),
    };
    const workerRng = rng.fork();
    const workers = Array.from({ length: o.workers }, (_, i) => {
      const r = workerRng.fork();
      const behaviour: WorkerBehaviour = { dropper: i % 3 === 0, abandonRate: 0.03, thinkMs: [100, 1500], maxLiveActions: 2 };
      const id = `chaos-${i + 1}`;
      const run = o.mode === 'gateway' ? runSimulatedWorker(id, env, r, behaviour) : runDirectWorker(id, { ...env, client: stack.client }, r, behaviour);
      return run.catch((err: unknown) => {
        ledger.anomaly(`${id} crashed: ${(err as Error).stack ?? String(err)}`);
      });
    });

    // Wait for the run to end (or the time limit), logging progress.
    const deadline = started + o.timeoutMs;
    let lastLog = 0;
    for (;;) {
      const row = await stack.db.em().findOne(TaskRun, runId, { fields: ['status'] });
      if (row && isFinalTaskRunStatus(row.status)) break;
      if (Date.now() > deadline) {
        log(`!! the run did not end within ${o.timeoutMs / 1000} s`);
        log(await diagnose(stack, runId));
        break;
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`  ${Math.round((Date.now() - started) / 1000)} s: ${completed}/${o.assignments} completed, ${injected.length}/${planned.length} faults, ${ledger.acked.length} acks, counters ${JSON.stringify(ledger.counters)}`);
      }
      await sleep(500);
    }
    runEnded = true;
    clearInterval(progress);
    await injector;
    // Workers finishing a unit they submitted come back for it (up to FINISH_AFTER_END_MS), plus an answer's wait.
    const finished = await Promise.race([Promise.all(workers).then(() => true), sleep(FINISH_AFTER_END_MS + 30_000).then(() => false)]);
    if (!finished) log('  !! some simulated workers were still finishing their last unit when the checks began');
    clearInterval(temporalWatch);
    // The workflow writes the run's final status just before it returns.
    await stack.client.workflow.getHandle(taskRunWorkflowId(runId)).result().catch(() => undefined);

    invariants = await checkInvariants({ db: stack.db, client: stack.client, runId, ledger, units: o.assignments, checkDeliveries: o.mode === 'gateway' });
    if (mturk) invariants.push(...(await reviewAndPayOnMTurk(stack, mturk, runId, log)));
    // After the run's own invariants (they read units as the run left them): review and pay at Prolific.
    if (prolific) invariants.push(...(await prolific.settle(runId, o.bonuses ?? 0)));
    if (injected.length < planned.length) {
      invariants.push({
        name: 'every planned fault injected',
        ok: false,
        detail: `${injected.length} of ${planned.length} faults happened before the run ended`,
        violations: planned.slice(injected.length).map(describeFault),
      });
    }
    if (ledger.anomalies.length > 0) {
      invariants.push({ name: 'no protocol anomaly seen by workers', ok: false, detail: `${ledger.anomalies.length} anomalies`, violations: ledger.anomalies.slice(0, 20) });
    }
    for await (const _ of stack.client.workflow.list({ query: `WorkflowId = '${taskRunWorkflowId(runId)}'` })) continuedAsNew += 1;
    continuedAsNew = Math.max(0, continuedAsNew - 1);
    if (o.saveHistories) {
      setSaveHistories(true);
      savedHistories = await saveRunHistories(stack, runId, 'chaos-run', { assignments: 4 });
    }
  } finally {
    stopping = true;
    runEnded = true;
    await stack.stop().catch((err: unknown) => log(`stopping the stack: ${(err as Error).message}`));
    await mturk?.close();
    await prolific?.close();
  }

  const passed = invariants.length > 0 && invariants.every((i) => i.ok);
  return {
    seed: o.seed,
    options: o,
    runId,
    passed,
    durationS: Math.round((Date.now() - started) / 100) / 10,
    planned,
    faults: injected,
    unexpectedExits: unexpected.map((e) => ({ ...e, at: e.at.toISOString() })),
    invariants,
    providerFaults: prolific?.faults ?? [],
    counters: ledger.counters,
    anomalies: ledger.anomalies,
    acknowledgedSubmissions: ledger.acked.length,
    continuedAsNew,
    savedHistories,
    workDir,
    rerun: rerunCommand(o),
  };
}

/**
 * The operator's side on MTurk after the run: approve every submitted unit, pay a bonus on three of
 * them and ask for each bonus a second time (the same request), then check MTurk's own records.
 */
async function reviewAndPayOnMTurk(stack: Stack, mturk: ChaosMTurk, runId: string, log: (line: string) => void): Promise<InvariantResult[]> {
  const reviewer = createReviewer({ client: stack.client, db: stack.db, settings: stack.settings });
  const approved = await reviewer.review(runId, { decision: 'approve', all: true, timeoutMs: 120_000 }).catch((err: unknown) => {
    log(`  !! approve --all failed: ${(err as Error).message}`);
    return [];
  });
  const bonusUnits = approved.slice(0, 3).map((r) => r.unitId);
  for (const unitId of bonusUnits) {
    for (let i = 0; i < 2; i++) await reviewer.bonus(runId, { unitId, amount: 0.05, reason: 'chaos bonus', timeoutMs: 120_000 });
  }
  log(`  approved ${approved.length} units at MTurk, bonus requested twice on ${bonusUnits.length}`);
  return mturk.check(stack.db, runId, bonusUnits);
}

/** What is stuck, when a run does not end: unit counts, holding agents, the workflow's pending work. */
async function diagnose(stack: Stack, runId: string): Promise<string> {
  const lines: string[] = [];
  const rows: Array<{ status: string; n: number | string }> = await stack.db.em().getConnection().execute('select status, count(*) as n from unit where task_run_id = ? group by status', [runId]);
  lines.push(`units: ${rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
  try {
    const d = await stack.client.workflow.getHandle(taskRunWorkflowId(runId)).describe();
    lines.push(`TaskRun workflow: ${d.status.name}, history ${d.historyLength} events, pending activities ${JSON.stringify(d.raw.pendingActivities?.map((a) => ({ type: a.activityType?.name, attempt: a.attempt, state: a.state, lastFailure: a.lastFailure?.message })))}`);
  } catch (err) {
    lines.push(`TaskRun workflow: cannot describe (${(err as Error).message})`);
  }
  return lines.join('\n');
}

export function formatReport(r: ChaosReport): string {
  const lines = [
    '',
    `chaos run ${r.passed ? 'PASSED' : 'FAILED'}: seed ${r.seed}, run ${r.runId}, ${r.durationS} s`,
    `  ${r.options.assignments} assignments, ${r.options.workers} workers (${r.options.mode}, ${r.options.gateways} gateways, ${r.options.dialect}); TaskRun continued as new ${r.continuedAsNew} time(s)`,
    `  faults injected (${r.faults.length} of ${r.planned.length}):`,
    ...r.faults.map((f) => `    ${describeFault(f)}`),
    ...r.providerFaults.map((f) => `    ${f}`),
    `  processes that exited on their own: ${r.unexpectedExits.length === 0 ? 'none' : ''}`,
    ...r.unexpectedExits.map((e) => `    ${e.name} at ${e.at}: code ${e.code} signal ${e.signal}`),
    `  worker-side counts: ${JSON.stringify(r.counters)}`,
    '  invariants:',
    ...r.invariants.flatMap((i) => [`    [${i.ok ? 'ok' : 'FAIL'}] ${i.name}: ${i.detail}`, ...i.violations.map((v) => `           - ${v}`)]),
    ...(r.savedHistories.length ? ['  histories saved:', ...r.savedHistories.map((h) => `    ${h.file} (${h.events} events)`)] : []),
    `  logs: ${r.workDir}`,
  ];
  if (!r.passed) lines.push(`  rerun this exact run with: ${r.rerun}`);
  return `${lines.join('\n')}\n`;
}
