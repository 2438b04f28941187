/**
 * Children do not outlive their supervisor: `node toolchain/orphanGuard.ts <childPid>` is started by
 * the supervisor (say `hitloop dev`) beside a child it spawned (the Temporal dev server). When the
 * supervisor dies without stopping the child (SIGKILL, a crash: no exit handler runs), this process
 * is handed to another parent; it then stops the child (SIGTERM, SIGKILL after a grace period) so
 * the child's ports and files are free for the next start. It exits as soon as the child is gone.
 *
 * It watches its own parent rather than a recorded pid: a dead supervisor's pid may be reused, its
 * own parent link changes exactly once, when the supervisor goes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const POLL_MS = 300;
const GRACE_MS = 10_000;

/** Start a guard for `childPid`, owned by this process; it never keeps this process alive. */
export function guardChild(childPid: number): void {
  const guard = spawn(process.execPath, [fileURLToPath(import.meta.url), String(childPid)], { stdio: 'ignore' });
  guard.on('error', () => undefined);
  guard.unref();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function watch(childPid: number): void {
  const supervisor = process.ppid;
  // The supervisor's own signals (Ctrl-C reaches the whole process group) are its to handle: it
  // stops the child itself, and this guard leaves when the child is gone.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const timer = setInterval(() => {
    if (!alive(childPid)) process.exit(0);
    if (process.ppid === supervisor) return;
    clearInterval(timer);
    try {
      process.kill(childPid, 'SIGTERM');
    } catch {
      process.exit(0);
    }
    const deadline = Date.now() + GRACE_MS;
    setInterval(() => {
      if (!alive(childPid)) process.exit(0);
      if (Date.now() < deadline) return;
      try {
        process.kill(childPid, 'SIGKILL');
      } catch {
        // Gone in between.
      }
      process.exit(0);
    }, POLL_MS);
  }, POLL_MS);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const childPid = Number(process.argv[2]);
  if (!Number.isInteger(childPid) || childPid <= 0) {
    process.stderr.write('usage: node toolchain/orphanGuard.ts <childPid>\n');
    process.exit(2);
  }
  watch(childPid);
}
