/**
 * Temporal for tests: the CLI found by globalSetup, and a dev server per test file through the SDK's
 * TestWorkflowEnvironment, with hitloop's search attributes registered.
 */
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { devServerDynamicConfigArgs } from '../../toolchain/devServer.ts';
import { ensureWorkflowBundle } from '../../workers/workflowBundle.ts';
import { HITLOOP_SEARCH_ATTRIBUTES } from '../../workflows/searchAttributes.ts';

/** Path of the `temporal` binary that test/support/globalSetup.ts found or built. */
export function temporalCliPath(): string {
  const path = inject('temporalCliPath') ?? process.env.HITLOOP_TEST_TEMPORAL_CLI;
  if (!path) {
    throw new Error(
      'No Temporal CLI was provided to this test: vitest must run with test/support/globalSetup.ts as globalSetup ' +
        '(vitest.config.ts does this; run `npx vitest run` from the repository root).',
    );
  }
  return path;
}

export interface StartTestTemporalOptions {
  /** SQLite file to keep the server's state in (e.g. to restart on it); in memory when omitted. */
  dbFile?: string;
}

/** Starts a Temporal dev server on a free port; call `teardown()` on the result when done. */
export function startTestTemporal(opts: StartTestTemporalOptions = {}): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCliPath() },
      dbFilename: opts.dbFile,
      ip: '127.0.0.1',
      searchAttributes: [...HITLOOP_SEARCH_ATTRIBUTES],
      extraArgs: devServerDynamicConfigArgs(),
      // The SDK turns this into `--log-format pretty --log-level warn` (so not in extraArgs too).
      log: { format: 'pretty', level: 'warn' },
    },
  });
}

/** The real workflow code on a test dev server, run by a worker whose activities the test scripts. */
export interface StubWorker {
  env: TestWorkflowEnvironment;
  taskQueue: string;
  stop(): Promise<void>;
}

/** For workflow tests with stub activities: no database, no provider, a rule checked in seconds. */
export async function startStubWorker(name: string, activities: object): Promise<StubWorker> {
  const env = await startTestTemporal();
  const taskQueue = `${name}-${randomUUID().slice(0, 8)}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await ensureWorkflowBundle(), activities });
  const running = worker.run();
  return {
    env,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await env.teardown();
    },
  };
}
