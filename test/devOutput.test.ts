/**
 * What a person sees in `hitloop dev`: the demo's progress lines and the processes' log records as
 * readable lines (pino-pretty), never a raw JSON record between two progress lines (the worker's
 * info records, "dynamic overlap: unit added" among them, used to print as JSON there).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../toolchain/ports.ts';
import { REPO_ROOT } from './support/cli.ts';
import { temporalCliPath } from './support/temporal.ts';

const CLI_MAIN = path.join(REPO_ROOT, 'cli', 'main.ts');

/** A line that is a whole JSON object: what a pino record looks like when nothing prettifies it. */
const isJsonRecord = (line: string): boolean => {
  if (!line.trimStart().startsWith('{')) return false;
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};

describe('hitloop dev output', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-dev-output-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('shows the demo progress and readable log lines, and no raw JSON line', { timeout: 600_000 }, async () => {
    const ports = [await freePort(), await freePort(), await freePort()].map(String);
    const child = spawn(
      process.execPath,
      [CLI_MAIN, 'dev', '--demo', '--exit-when-done', '--data-dir', tmp, '--temporal-port', ports[0]!, '--ui-port', ports[1]!, '--gateway-port', ports[2]!],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          TEMPORAL_CLI_PATH: temporalCliPath(),
          HITLOOP_CONFIG_FILE: path.join(tmp, 'no-config.yaml'),
          HITLOOP_DATABASE_URL: `sqlite://${path.join(tmp, 'hitloop.db')}`,
          // info, as a user gets it: every record the worker and gateway write shows.
          HITLOOP_LOG_LEVEL: 'info',
        },
      },
    );
    // Both streams in arrival order, as a terminal shows them.
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    const lines = output.split('\n');

    expect(code, output).toBe(0);
    expect(lines.filter((l) => l.startsWith('demo: [')).length, 'progress lines').toBeGreaterThan(0);
    expect(lines.some((l) => /\bINFO\b.*gateway listening/.test(l)), "the gateway's record as a readable line").toBe(true);
    expect(lines.filter(isJsonRecord), 'raw JSON lines').toEqual([]);
  });
});
