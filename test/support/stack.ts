/**
 * A whole hitloop stack for end-to-end tests: a real Temporal dev server, a fresh database of the
 * chosen dialect, a hitloop worker on its own task queue, and an operator (the typed API).
 * Workers can be stopped and started again to simulate crashes.
 */
import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import type { Settings } from '../../config/settings.ts';
import { openDatabase, type Database } from '../../model/database.ts';
import { connectOperator, type Operator } from '../../operator/api.ts';
import { createHitloopWorker, type HitloopWorker } from '../../workers/worker.ts';
import { createTestDatabase } from './databases.ts';
import { startTestTemporal } from './temporal.ts';

export type Dialect = 'sqlite' | 'postgresql';

// The SDK's own INFO lines (worker state changes, workflow logs) drown test output; warnings stay.
try {
  Runtime.install({ logger: new DefaultLogger((process.env.HITLOOP_TEST_SDK_LOG as 'WARN' | undefined) ?? 'WARN') });
} catch {
  // Already installed by another test module in this process.
}

export interface Stack {
  env: TestWorkflowEnvironment;
  db: Database;
  settings: Settings;
  operator: Operator;
  /** The running worker, if any. */
  worker(): HitloopWorker | undefined;
  startWorker(): Promise<HitloopWorker>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

export const testLog = pino({ level: process.env.HITLOOP_TEST_LOG ?? 'warn' });

export function testSettings(overrides: Partial<Settings>): Settings {
  return {
    dataDir: '/tmp',
    databaseUrl: 'sqlite::memory:',
    temporalAddress: '127.0.0.1:7233',
    temporalNamespace: 'default',
    taskQueue: `hitloop-test-${randomBytes(4).toString('hex')}`,
    secret: 'test-secret',
    gatewayPort: 0,
    gatewayUrl: 'http://127.0.0.1:0',
    logLevel: 'warn',
    ...overrides,
  };
}

export async function startStack(dialect: Dialect, opts: { env?: TestWorkflowEnvironment; worker?: boolean } = {}): Promise<Stack> {
  const env = opts.env ?? (await startTestTemporal());
  const database = await createTestDatabase(dialect);
  const db = await openDatabase(database.url);
  const settings = testSettings({ databaseUrl: database.url, temporalAddress: env.address });
  const operator = await connectOperator(settings, { client: env.client, db });
  let current: { w: HitloopWorker; running: Promise<void> } | undefined;

  const stack: Stack = {
    env,
    db,
    settings,
    operator,
    worker: () => current?.w,
    async startWorker() {
      if (current) return current.w;
      const w = await createHitloopWorker({ settings, log: testLog, db, connection: env.nativeConnection });
      const running = w.run();
      running.catch((err: unknown) => testLog.error({ err }, 'worker stopped with an error'));
      current = { w, running };
      return w;
    },
    async stopWorker() {
      if (!current) return;
      const { w, running } = current;
      current = undefined;
      w.shutdown();
      await running.catch(() => undefined);
    },
    async stop() {
      await stack.stopWorker();
      await operator.close();
      await db.close();
      if (!opts.env) await env.teardown();
      await database.drop();
    },
  };
  if (opts.worker !== false) await stack.startWorker();
  return stack;
}

/** Polls `probe` until it returns a value other than undefined (or throws after `timeoutMs`). */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
