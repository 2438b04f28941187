/**
 * A hitloop worker as a real child process (`node workers/main.ts`), the way `hitloop worker` runs
 * in production: tests kill it with SIGKILL to simulate a crash, and read its memory from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WORKER_MAIN = path.join(ROOT, 'workers', 'main.ts');
const OUTPUT_TAIL_LINES = 60;
const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 30_000;

/** Workers still running, killed if the test process exits without stopping them (no orphans). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface WorkerProcessOptions {
  temporalAddress: string;
  databaseUrl: string;
  taskQueue: string;
  secret?: string;
  /** Extra environment. HITLOOP_LOG_LEVEL must stay `info` or lower: readiness is its "worker started" line. */
  env?: NodeJS.ProcessEnv;
}

export interface WorkerProcess {
  pid: number;
  child: ChildProcess;
  /** The last lines the worker wrote (stdout and stderr), for failure messages. */
  outputTail(): string;
  /** Resident set size now and its peak so far (VmRSS, VmHWM), in bytes, from /proc. */
  memory(): { rss: number; peakRss: number };
  /** A crash: SIGKILL, no chance to finish anything. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** A graceful stop: SIGTERM, in-flight activities finish. Resolves with the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Node 24 runs the worker; vitest may run under it already, else the cached Node 24 is used. */
function nodeBinary(): string {
  if (process.versions.node.startsWith('24.')) return process.execPath;
  const home = process.env.HOME ?? '/root';
  return path.join(home, '.cache', 'hitloop', 'node24', 'node_modules', '.bin', 'node');
}

/** Starts a worker process and resolves once it has connected to Temporal and registered its code. */
export async function startWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcess> {
  const child = spawn(nodeBinary(), [WORKER_MAIN], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: opts.temporalAddress,
      HITLOOP_DATABASE_URL: opts.databaseUrl,
      HITLOOP_TASK_QUEUE: opts.taskQueue,
      HITLOOP_SECRET: opts.secret ?? 'test-secret',
      HITLOOP_LOG_LEVEL: 'info',
      ...opts.env,
    },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn the worker process (${nodeBinary()} ${WORKER_MAIN})`);
  running.add(child);

  const output: string[] = [];
  let onLine: ((line: string) => void) | undefined;
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      onLine?.(line);
    }
    output.splice(0, Math.max(0, output.length - OUTPUT_TAIL_LINES));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const outputTail = (): string => (output.length ? output.join('\n') : '(no output)');

  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the worker process ${pid} did not log "worker started" within ${START_TIMEOUT_MS} ms. Its output:\n${outputTail()}`)),
      START_TIMEOUT_MS,
    );
    onLine = (line) => {
      if (line.includes('"worker started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    // `exited` only resolves; an exit after the start is settled already and changes nothing.
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the worker process ${pid} exited (${code ?? signal}) before it started. Its output:\n${outputTail()}`));
    });
  });
  try {
    await started;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  onLine = undefined;

  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    pid,
    child,
    outputTail,
    exited,
    memory: () => readProcMemory(pid),
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!alive()) return (await exited).code;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      const { code } = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}

/** VmRSS and VmHWM of a live process, in bytes. */
export function readProcMemory(pid: number): { rss: number; peakRss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { rss: kb('VmRSS'), peakRss: kb('VmHWM') };
}
