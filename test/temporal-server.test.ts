/**
 * The Temporal toolchain against the real CLI: finding it, running the dev server on a SQLite file
 * across a restart, and hitloop's search attributes being registered.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterEach, describe, expect, test } from 'vitest';
import { startDevServer, type DevServer } from '../toolchain/devServer.ts';
import { findTemporalCli } from '../toolchain/temporalCli.ts';
import { HITLOOP_SEARCH_ATTRIBUTES, RUN_STATUS, TASK_NAME } from '../workflows/searchAttributes.ts';
import { greet } from './fixtures/trivialWorkflow.ts';
import { startTestTemporal, temporalCliPath } from './support/temporal.ts';

const trivialWorkflowPath = fileURLToPath(new URL('./fixtures/trivialWorkflow.ts', import.meta.url));

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hitloop-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/** An executable shell script; PATH may be empty when it runs, so it uses only builtins. */
function script(dir: string, name: string, body: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

const fakeCli = (dir: string, version: string) => script(dir, 'temporal', `echo 'temporal version ${version}'`);

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('findTemporalCli', () => {
  test('prefers TEMPORAL_CLI_PATH, then temporal on PATH, then the cached build', async () => {
    const root = tempDir('cli-order');
    const explicit = fakeCli(path.join(root, 'explicit'), '9.9.9-explicit');
    const onPath = fakeCli(path.join(root, 'bin'), '9.9.9-path');
    const cacheHome = path.join(root, 'cache');
    const cached = fakeCli(path.join(cacheHome, 'hitloop', 'temporal-cli', 'v1.5.1'), '9.9.9-cached');
    const emptyBin = path.join(root, 'empty');
    fs.mkdirSync(emptyBin);
    const base = { HOME: root, XDG_CACHE_HOME: cacheHome };

    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    expect(await findTemporalCli({ build: false, log, env: { ...base, TEMPORAL_CLI_PATH: explicit, PATH: path.dirname(onPath) } })).toBe(explicit);
    expect(await findTemporalCli({ build: false, log, env: { ...base, PATH: path.dirname(onPath) } })).toBe(onPath);
    expect(await findTemporalCli({ build: false, log, env: { ...base, PATH: emptyBin } })).toBe(cached);
    expect(lines).toEqual([
      `Temporal CLI from TEMPORAL_CLI_PATH: ${explicit} (9.9.9-explicit)`,
      `Temporal CLI on PATH: ${onPath} (9.9.9-path)`,
      `Temporal CLI cached build: ${cached} (9.9.9-cached)`,
    ]);
  });

  test('a TEMPORAL_CLI_PATH that is missing or not a Temporal CLI is an error naming the variable', async () => {
    const root = tempDir('cli-bad');
    const missing = path.join(root, 'no-such-temporal');
    await expect(findTemporalCli({ env: { HOME: root, TEMPORAL_CLI_PATH: missing } })).rejects.toThrow(
      `TEMPORAL_CLI_PATH is set to ${missing}, but that is not an executable file`,
    );
    const impostor = script(root, 'not-temporal', 'echo "something else 1.0"');
    await expect(findTemporalCli({ env: { HOME: root, TEMPORAL_CLI_PATH: impostor } })).rejects.toThrow(
      `TEMPORAL_CLI_PATH is set to ${impostor}, but \`${impostor} --version\` did not report a Temporal CLI version`,
    );
  });

  test('without a CLI and with building disabled, says how to get one', async () => {
    const root = tempDir('cli-none');
    await expect(
      findTemporalCli({ build: false, env: { HOME: root, XDG_CACHE_HOME: path.join(root, 'cache'), PATH: root } }),
    ).rejects.toThrow(/No Temporal CLI found.*Run scripts\/setup.*or set TEMPORAL_CLI_PATH/);
  });

  test('a failed Go build reports the last lines of its output and the way out', async () => {
    const root = tempDir('cli-build');
    const goBin = path.join(root, 'go-bin');
    script(goBin, 'go', 'echo "go: downloading github.com/temporalio/cli v1.5.1" >&2\necho "go: fake proxy refused the module" >&2\nexit 1');
    const cacheHome = path.join(root, 'cache');
    const error = await findTemporalCli({ env: { HOME: root, XDG_CACHE_HOME: cacheHome, PATH: goBin } }).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error?.message).toMatch(/Building the Temporal CLI failed .*exited with 1/);
    expect(error?.message).toContain('set TEMPORAL_CLI_PATH');
    expect(error?.message).toContain('go: fake proxy refused the module');
    // The build log keeps the whole output, and the lock is released for the next attempt.
    expect(fs.readFileSync(path.join(cacheHome, 'hitloop', 'logs', 'temporal-build.log'), 'utf8')).toContain('fake proxy refused');
    expect(fs.existsSync(path.join(cacheHome, 'hitloop', 'temporal-cli', 'v1.5.1', '.build.lock'))).toBe(false);
  });
});

describe('Temporal dev server', () => {
  const servers: DevServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
  });

  async function start(dataDir: string): Promise<DevServer> {
    const server = await startDevServer({ dataDir, cliPath: temporalCliPath() });
    servers.push(server);
    return server;
  }

  test('keeps a finished workflow (history and result) across a restart on the same database file', async () => {
    const dataDir = tempDir('devserver');
    const taskQueue = 'trivial';
    const workflowId = `greet-${Date.now()}`;

    const first = await start(dataDir);
    expect(first.dbFile).toBe(path.join(dataDir, 'temporal.db'));
    const nativeConnection = await NativeConnection.connect({ address: first.address });
    const connection = await Connection.connect({ address: first.address });
    let historyBefore;
    try {
      const worker = await Worker.create({ connection: nativeConnection, taskQueue, workflowsPath: trivialWorkflowPath });
      const client = new Client({ connection });
      const result = await worker.runUntil(client.workflow.execute(greet, { taskQueue, workflowId, args: ['durable'] }));
      expect(result).toBe('hello, durable');
      historyBefore = await client.workflow.getHandle(workflowId).fetchHistory();
    } finally {
      await connection.close();
      await nativeConnection.close();
    }
    const eventTypesBefore = historyBefore.events?.map((e) => e.eventType) ?? [];
    expect(eventTypesBefore.length).toBeGreaterThanOrEqual(5); // started, task scheduled/started/completed, completed

    await first.stop();
    expect(first.process.exitCode !== null || first.process.signalCode !== null).toBe(true);

    const second = await start(dataDir);
    expect(second.address).not.toBe('');
    const connectionAfter = await Connection.connect({ address: second.address });
    try {
      const handle = new Client({ connection: connectionAfter }).workflow.getHandle(workflowId);
      const historyAfter = await handle.fetchHistory();
      expect(historyAfter.events?.map((e) => e.eventType)).toEqual(eventTypesBefore);
      expect(await handle.result()).toBe('hello, durable');
      expect((await handle.describe()).status.name).toBe('COMPLETED');
    } finally {
      await connectionAfter.close();
    }
  });

  test('registers the hitloop search attributes, again on restart', async () => {
    const dataDir = tempDir('devserver-sa');
    for (let round = 0; round < 2; round++) {
      const server = await start(dataDir);
      const connection = await Connection.connect({ address: server.address });
      try {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        for (const key of HITLOOP_SEARCH_ATTRIBUTES) expect(Object.keys(customAttributes ?? {})).toContain(key.name);
      } finally {
        await connection.close();
      }
      await server.stop();
    }
  });
});

describe('startTestTemporal', () => {
  test('starts a dev server where workflows carry and are found by the hitloop search attributes', async () => {
    const env = await startTestTemporal();
    try {
      const workflowId = `sa-${Date.now()}`;
      // No worker: the workflow only has to exist, its attributes are set at start.
      const handle = await env.client.workflow.start(greet, {
        taskQueue: 'nobody-polls',
        workflowId,
        args: ['attributes'],
        typedSearchAttributes: [
          { key: TASK_NAME, value: 'demo-task' },
          { key: RUN_STATUS, value: 'LAUNCHED' },
        ],
      });
      const description = await handle.describe();
      expect(description.typedSearchAttributes.get(TASK_NAME)).toBe('demo-task');
      expect(description.typedSearchAttributes.get(RUN_STATUS)).toBe('LAUNCHED');

      // Visibility is written asynchronously; poll (bounded) instead of asserting on timing.
      const query = `HitloopTaskName = 'demo-task' AND HitloopRunStatus = 'LAUNCHED'`;
      let found: string[] = [];
      for (let attempt = 0; attempt < 100 && found.length === 0; attempt++) {
        found = [];
        for await (const execution of env.client.workflow.list({ query })) found.push(execution.workflowId);
        if (found.length === 0) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(found).toEqual([workflowId]);
      await handle.terminate('test done');
    } finally {
      await env.teardown();
    }
  });
});
