/**
 * What a person sees in `hitloop dev`: the demo's progress lines and the processes' log records as
 * readable lines (pino-pretty), never a raw JSON record between two progress lines (the worker's
 * info records, "dynamic overlap: unit added" among them, used to print as JSON there).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../toolchain/ports.ts';
import { spawnDev } from './support/cli.ts';
import { temporalCliPath } from './support/temporal.ts';

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
    // Ports chosen ahead can be taken before dev binds them (by the other test files running meanwhile,
    // or by the Temporal server's own random ports: CI saw the gateway's): then again, on new ports.
    let code: number | null = null;
    let output = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const ports = { temporal: await freePort(), ui: await freePort(), gateway: await freePort() };
      fs.rmSync(tmp, { recursive: true, force: true });
      // info, as a user gets it: every record the worker and gateway write shows.
      const { child, output: outputOf } = spawnDev(tmp, ports, { args: ['--demo', '--exit-when-done'], logLevel: 'info', temporalCli: temporalCliPath() });
      code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      output = outputOf();
      if (code === 0 || !/already in use/.test(output)) break;
    }
    const lines = output.split('\n');

    expect(code, output).toBe(0);
    expect(lines.filter((l) => l.startsWith('demo: [')).length, 'progress lines').toBeGreaterThan(0);
    expect(lines.some((l) => /\bINFO\b.*gateway listening/.test(l)), "the gateway's record as a readable line").toBe(true);
    expect(lines.filter(isJsonRecord), 'raw JSON lines').toEqual([]);
  });
});
