/**
 * The embedded default under a small study's load (issue 15): `hitloop dev`'s shape on SQLite
 * (Temporal on a SQLite file too; the worker, the gateway and the operator each open the database
 * file themselves, in one process or with the gateway as a process of its own), and N workers
 * (8 by default, HITLOOP_SQLITE_LOAD_WORKERS for more) go through onboarding at the same time
 * through the real gateway while other workers register and submit on a second run.
 * Every onboarding is decided, every acknowledged submission is stored, and `database is locked`
 * appears nowhere: not in an activity's failure, a log line, a packet or the runs' status.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../config/settings.ts';
import { type Gateway, startGateway } from '../gateway/server.ts';
import { type Database, openDatabase, parseDatabaseUrl } from '../model/database.ts';
import { Agent, OnboardingAgent } from '../model/entities.ts';
import { connectOperator, type Operator } from '../operator/api.ts';
import { createQualificationService } from '../qualifications/service.ts';
import type { AgentConnection } from '../simulate/agentConnection.ts';
import { createHitloopWorker, type HitloopWorker } from '../workers/worker.ts';
import { connect, startGatewayProcess, untilStatus } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { createTestDatabase } from './support/databases.ts';
import { eventually, testSettings } from './support/stack.ts';
import { startTestTemporal } from './support/temporal.ts';

const WORKERS = Number(process.env.HITLOOP_SQLITE_LOAD_WORKERS ?? 8);
const ORDINARY_WORKERS = Math.max(4, Math.ceil(WORKERS / 2));
/** How long one answer may take: generous (a slow shared machine), far below the minutes of the bug. */
const ANSWER_MS = 180_000;
const LOCKED = /database is locked|SQLITE_BUSY/i;

/** Every line the worker and the gateway log, and every activity failure, to search afterwards. */
class Trace {
  readonly lines: string[] = [];
  readonly log = pino(
    { level: 'info' },
    new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.lines.push(chunk.toString());
        done();
      },
    }),
  );
  record(what: string): void {
    this.lines.push(what);
  }
  matching(pattern: RegExp): string[] {
    return this.lines.filter((l) => pattern.test(l));
  }
}

/**
 * `one process`: hitloop dev's shape (worker, gateway and operator in one process, each with its own
 * connection); `gateway process`: the gateway as a process of its own (`hitloop gateway`) beside the worker.
 */
type Shape = 'one process' | 'gateway process';

describe.each<Shape>(['one process', 'gateway process'])(`SQLite under load: ${WORKERS} onboardings at once, %s`, (shape) => {
  const trace = new Trace();
  let env: TestWorkflowEnvironment;
  let database: { url: string; drop(): Promise<void> };
  let settings: Settings;
  let worker: HitloopWorker;
  let workerRun: Promise<void>;
  let gateway: Pick<Gateway, 'wsUrl'> & { close(): Promise<void> };
  let gatewayOutput = (): string => '';
  let operator: Operator;
  /** The test's own look at the file, as a CLI command beside `hitloop dev` would have. */
  let checkDb: Database;
  const sockets: AgentConnection[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    // Temporal keeps its state in a SQLite file too, as `hitloop dev` starts it.
    const target = parseDatabaseUrl(database.url);
    if (target.dialect !== 'sqlite') throw new Error('the test database is not SQLite');
    env = await startTestTemporal({ dbFile: path.join(path.dirname(target.file), 'temporal.db') });
    settings = testSettings({ databaseUrl: database.url, temporalAddress: env.address });
    const failures = (): ActivityInboundCallsInterceptor => ({
      async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
        try {
          return await next(input);
        } catch (err) {
          trace.record(`activity failed: ${(err as Error).message}`);
          throw err;
        }
      },
    });
    // No `db` passed anywhere: each part opens the file itself, as in cli/commands/dev.ts.
    worker = await createHitloopWorker({ settings, log: trace.log, connection: env.nativeConnection, activityInterceptors: [() => ({ inbound: failures() })] });
    workerRun = worker.run();
    if (shape === 'one process') {
      gateway = await startGateway({ settings, log: trace.log, client: env.client, pollIntervalMs: 50, ackFlushMs: 100 });
    } else {
      const child = await startGatewayProcess({ settings }, { env: { HITLOOP_LOG_LEVEL: 'info' } });
      gateway = { wsUrl: child.wsUrl, close: () => child.stop() };
      gatewayOutput = child.output;
    }
    operator = await connectOperator(settings, { client: env.client });
    checkDb = await openDatabase(settings.databaseUrl);
  }, 240_000);

  afterAll(async () => {
    for (const s of sockets) if (!s.closed) s.close();
    await gateway?.close();
    worker?.shutdown();
    await workerRun?.catch(() => undefined);
    await operator?.close();
    await checkDb?.close();
    await env?.teardown();
    await database?.drop();
  });

  async function open(): Promise<AgentConnection> {
    const conn = await connect(gateway.wsUrl);
    sockets.push(conn);
    return conn;
  }

  /** A packet with, when it carries an error id, the log lines of that id (the detail is there). */
  const explain = (packet: unknown): string => {
    const errorId = (packet as { errorId?: string }).errorId;
    const lines = errorId ? [...trace.matching(new RegExp(errorId)), ...gatewayOutput().split('\n').filter((l) => l.includes(errorId))] : [];
    return `${JSON.stringify(packet)}${lines.length ? `; logged: ${lines.join(' ').slice(0, 4000)}` : ''}`;
  };

  /** A submit that was acknowledged, with what it carried. */
  type Acked = { agentId: string; data: Record<string, unknown> };

  /** Register, go through onboarding with `answer`, and (when passed) work and submit one unit. */
  async function onboardAndWork(runId: string, workerId: string, answer: string): Promise<{ outcome: 'passed' | 'refused'; acked?: Acked }> {
    const conn = await open();
    conn.register(runId, { worker_id: workerId }, randomUUID());
    const first = await conn.expect((p) => p.type === 'onboarding' || p.type === 'agent' || p.type === 'refused' || p.type === 'error', ANSWER_MS, `${workerId}: onboarding`);
    if (first.type !== 'onboarding') throw new Error(`${workerId} expected onboarding, got ${explain(first)}`);
    conn.send({ type: 'submit', submitKey: `ob-${workerId}`, data: { answer } });
    const ack = await conn.expect((p) => p.type === 'submit_ack' || p.type === 'error', ANSWER_MS, `${workerId}: onboarding ack`);
    if (ack.type !== 'submit_ack') throw new Error(`${workerId}: onboarding answers answered with ${explain(ack)}`);
    const decided = await conn.expect((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'error', ANSWER_MS, `${workerId}: onboarding decided`);
    if (decided.type === 'refused') return { outcome: 'refused' };
    if (decided.type !== 'agent') throw new Error(`${workerId}: onboarding answered with ${explain(decided)}`);
    return { outcome: 'passed', acked: await submitUnit(conn, decided.agentId, workerId) };
  }

  async function submitUnit(conn: AgentConnection, agentId: string, workerId: string): Promise<Acked> {
    await untilStatus(conn, 'in_task');
    const data = { label: workerId.length % 2 ? 'positive' : 'negative' };
    conn.send({ type: 'submit', submitKey: `s-${agentId}`, data });
    const answer = await conn.expect((p) => p.type === 'submit_ack' || p.type === 'error', ANSWER_MS, `${workerId}: submit ack`);
    if (answer.type !== 'submit_ack') throw new Error(`${workerId}: submit answered with ${explain(answer)}`);
    return { agentId, data };
  }

  /** A worker on a run without onboarding: register, work, submit. */
  async function ordinary(runId: string, workerId: string): Promise<Acked> {
    const conn = await open();
    conn.register(runId, { worker_id: workerId }, randomUUID());
    const reply = await conn.expect((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'error', ANSWER_MS, `${workerId}: register`);
    if (reply.type !== 'agent') throw new Error(`${workerId}: register answered with ${explain(reply)}`);
    return submitUnit(conn, reply.agentId, workerId);
  }

  it('decides every onboarding, stores every acknowledged submission, and never reports a locked database', async () => {
    const qualification = 'load-onboarded';
    await createQualificationService({ db: checkDb, settings, log: trace.log }).create({ name: qualification });
    const onboardingRun = await operator.launch(
      formConfig(
        {
          task_name: 'load-onboarding',
          onboarding_qualification: qualification,
          max_num_concurrent_units: WORKERS,
          blueprint: {
            type: 'static-form',
            fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }],
            onboarding: { fields: [{ name: 'answer', type: 'text' }], expected: { answer: '42' } },
          },
        },
        WORKERS,
      ),
    );
    const ordinaryRun = await operator.launch(formConfig({ task_name: 'load-ordinary', max_num_concurrent_units: ORDINARY_WORKERS }, ORDINARY_WORKERS));
    for (const { runId } of [onboardingRun, ordinaryRun]) {
      await eventually(
        async () => {
          const s = await operator.status(runId);
          return s.status === 'running' && s.units.created === 0 ? true : undefined;
        },
        `run ${runId} running with its units launched`,
        240_000,
      );
    }

    // Watch what an operator would see while the load runs.
    const statusLines: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const { runId } of [onboardingRun, ordinaryRun]) {
          const s = await operator.status(runId).catch((err: unknown) => ({ stuck: `status failed: ${String(err)}` }));
          if (s.stuck) statusLines.push(s.stuck);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();

    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    const started = Date.now();
    // Every third worker gets onboarding wrong; the others pass and go on to a unit.
    const onboarding = Array.from({ length: WORKERS }, (_, i) => onboardAndWork(onboardingRun.runId, `load-w${i}`, i % 3 === 2 ? 'wrong' : '42'));
    const plain = Array.from({ length: ORDINARY_WORKERS }, (_, i) => ordinary(ordinaryRun.runId, `plain-w${i}`));
    // Settled together, so one early failure does not leave the others' sockets unwatched.
    const settled = await Promise.allSettled([Promise.all(onboarding), Promise.all(plain)]);
    const [results, plainAcked] = settled.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    }) as [Awaited<(typeof onboarding)[number]>[], Acked[]];
    const elapsedMs = Date.now() - started;
    loopDelay.disable();
    watching = false;
    await watcher;
    trace.record(`load: ${WORKERS} onboardings and ${ORDINARY_WORKERS} ordinary workers done in ${elapsedMs} ms`);
    console.log(
      `sqlite load: ${WORKERS} onboardings + ${ORDINARY_WORKERS} ordinary workers in ${elapsedMs} ms; ` +
        `longest event-loop stall ${Math.round(loopDelay.max / 1e6)} ms, p99 ${Math.round(loopDelay.percentile(99) / 1e6)} ms`,
    );

    // Every onboarding decided as answered.
    const expectedPassed = Array.from({ length: WORKERS }, (_, i) => i % 3 !== 2).filter(Boolean).length;
    expect(results.filter((r) => r.outcome === 'passed')).toHaveLength(expectedPassed);
    expect(results.filter((r) => r.outcome === 'refused')).toHaveLength(WORKERS - expectedPassed);
    const attempts = await checkDb.em().find(OnboardingAgent, { taskRun: onboardingRun.runId });
    expect(attempts.map((a) => a.status).sort()).toEqual([
      ...Array<string>(WORKERS - expectedPassed).fill('failed'),
      ...Array<string>(expectedPassed).fill('passed'),
    ]);

    // Every acknowledged submission stored exactly as sent.
    const acked = [...results.flatMap((r) => (r.acked ? [r.acked] : [])), ...plainAcked];
    for (const { agentId, data } of acked) {
      const agent = await eventually(async () => {
        const a = await checkDb.em().findOne(Agent, agentId);
        return a?.submission ? a : undefined;
      }, `submission of ${agentId} stored`);
      expect(agent.submission).toEqual(data);
    }

    // No locked database anywhere.
    expect(statusLines.filter((l) => LOCKED.test(l))).toEqual([]);
    expect(trace.matching(LOCKED)).toEqual([]);
    expect(gatewayOutput().split('\n').filter((l) => LOCKED.test(l))).toEqual([]);
    for (const conn of sockets) expect(conn.queued().filter((p) => LOCKED.test(JSON.stringify(p)))).toEqual([]);
  }, 1_200_000);
});
