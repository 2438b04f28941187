/**
 * A child process the harness starts, kills with SIGKILL, stops gracefully and restarts: the hitloop
 * worker and the gateways. Output goes to a log file; exits the harness did not cause are recorded,
 * because a process dying on its own during a chaos run is a finding, not noise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { readCpuSeconds, readMemory, type MemoryReading } from './procStats.ts';

export interface ProcessSpec {
  /** Short name used in logs and reports: `worker`, `gateway-1`. */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Output of every incarnation is appended here. */
  logFile: string;
  /** Ready once a line of output matches, or once the probe resolves (polled until it does). */
  readyLine?: RegExp;
  readyProbe?: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

export interface UnexpectedExit {
  name: string;
  at: Date;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines of output before the exit. */
  tail: string[];
}

const TAIL_LINES = 30;

export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** Called when the process exits without the harness asking it to. */
  onUnexpectedExit: ((exit: UnexpectedExit) => void) | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #expectingExit = false;
  #tail: string[] = [];
  #starts = 0;

  constructor(spec: ProcessSpec) {
    this.spec = spec;
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return !!this.#child && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get starts(): number {
    return this.#starts;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running (pid ${this.#child?.pid})`);
    const log = fs.createWriteStream(this.spec.logFile, { flags: 'a' });
    log.write(`\n===== ${new Date().toISOString()} start ${this.spec.name}: ${this.spec.command} ${this.spec.args.join(' ')}\n`);
    const child = spawn(this.spec.command, this.spec.args, { env: this.spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#starts += 1;
    this.#expectingExit = false;
    this.#tail = [];
    let readyResolve: () => void = () => {};
    const readyByLine = new Promise<void>((resolve) => {
      readyResolve = resolve;
    });
    let partial = '';
    const onData = (chunk: Buffer): void => {
      log.write(chunk);
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.#tail.push(line);
        if (this.spec.readyLine?.test(line)) readyResolve();
      }
      if (this.#tail.length > TAIL_LINES * 2) this.#tail.splice(0, this.#tail.length - TAIL_LINES);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        log.end(`\n===== ${new Date().toISOString()} exit ${this.spec.name}: code ${code} signal ${signal}\n`);
        if (!this.#expectingExit) {
          const exit: UnexpectedExit = { name: this.spec.name, at: new Date(), code, signal, tail: this.#tail.slice(-TAIL_LINES) };
          this.unexpectedExits.push(exit);
          this.onUnexpectedExit?.(exit);
        }
        resolve();
      });
      child.once('error', (err) => {
        log.end(`\n===== could not start ${this.spec.name}: ${err.message}\n`);
        resolve();
      });
    });

    const timeoutMs = this.spec.readyTimeoutMs ?? 60_000;
    const ready = this.spec.readyProbe ? this.#pollProbe(this.spec.readyProbe, timeoutMs) : readyByLine;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      this.#exited.then(() => 'exited' as const),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'ready') {
      await this.kill9();
      throw new Error(
        `${this.spec.name} ${outcome === 'exited' ? 'exited before it was ready' : `was not ready within ${timeoutMs} ms`}; ` +
          `see ${this.spec.logFile}. Last output:\n${this.#tail.slice(-TAIL_LINES).join('\n')}`,
      );
    }
  }

  async #pollProbe(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.running) {
      if (await probe().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    return new Promise(() => {}); // never ready: the race above reports exit or timeout
  }

  /** kill -9, and wait until the process is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.#expectingExit = true;
    this.#child?.kill('SIGKILL');
    await this.#exited;
  }

  /** SIGTERM (a graceful stop: profiles get written), SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.#expectingExit = true;
    this.#child?.kill('SIGTERM');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  memory(): MemoryReading | null {
    const pid = this.pid;
    return pid === undefined ? null : readMemory(pid);
  }

  cpuSeconds(): number | null {
    const pid = this.pid;
    return pid === undefined ? null : readCpuSeconds(pid);
  }
}

/**
 * Kill every still-running process if the harness itself exits abruptly: no orphans left behind.
 */
const everyProcess = new Set<ManagedProcess>();
export function track(p: ManagedProcess): ManagedProcess {
  everyProcess.add(p);
  return p;
}
process.once('exit', () => {
  for (const p of everyProcess) {
    const pid = p.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
/** For command-line entry points: Ctrl-C or a SIGTERM exits through the hook above, killing the children. */
export function exitOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping every child process\n`);
      process.exit(130);
    });
  }
}
