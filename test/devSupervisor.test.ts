/**
 * `hitloop dev` killed with SIGKILL (no exit handler runs) leaves no Temporal dev server behind: the
 * orphan guard (toolchain/orphanGuard.ts) stops it, its port is free again, and the next
 * `hitloop dev` on the same ports and data directory starts.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../toolchain/ports.ts';
import { spawnDev } from './support/cli.ts';
import { eventually } from './support/stack.ts';
import { temporalCliPath } from './support/temporal.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Pids of processes whose command line mentions `needle` (read from /proc). */
function pidsMentioning(needle: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

describe('hitloop dev killed with SIGKILL', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-dev-kill-'));
  const started: ChildProcess[] = [];
  afterAll(() => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of pidsMentioning(tmp)) process.kill(pid, 'SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** `hitloop dev` on fixed ports; resolves once it says it is running. */
  async function startDev(ports: { temporal: number; ui: number; gateway: number }): Promise<ChildProcess> {
    const { child, output } = spawnDev(tmp, ports, { logLevel: 'warn', temporalCli: temporalCliPath() });
    started.push(child);
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`hitloop dev exited with ${child.exitCode}:\n${output()}`);
        return output().includes('hitloop dev: running') ? true : undefined;
      },
      'hitloop dev to be running',
      180_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\noutput so far:\n${output()}`);
    });
    return child;
  }

  it('leaves no Temporal server holding its port, and the next dev starts', async () => {
    const ports = { temporal: await freePort(), ui: await freePort(), gateway: await freePort() };
    const first = await startDev(ports);
    const temporalPids = pidsMentioning(path.join(tmp, 'temporal.db')).filter((pid) => pid !== first.pid);
    expect(temporalPids.length, 'the dev server process, found by its database file').toBeGreaterThan(0);
    expect(await portIsFree(ports.temporal)).toBe(false);

    first.kill('SIGKILL');
    await eventually(async () => (temporalPids.some(alive) ? undefined : true), 'the orphaned Temporal server to be stopped', 60_000);
    await eventually(async () => ((await portIsFree(ports.temporal)) ? true : undefined), 'the Temporal port to be free', 30_000);

    const second = await startDev(ports);
    const exited = new Promise<number | null>((resolve) => second.once('exit', (code) => resolve(code)));
    second.kill('SIGTERM');
    expect(await exited).toBe(0);
    // A clean stop leaves nothing either: the server is stopped and its guard has left.
    await eventually(async () => (pidsMentioning(tmp).length === 0 ? true : undefined), 'every process of the stack to be gone', 60_000);
  }, 400_000);
});
