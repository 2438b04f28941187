/**
 * The Temporal dev server as a process the harness may kill -9 and start again on the same SQLite
 * file and ports, so every client and worker reconnects to the same address and finds its state.
 */
import fs from 'node:fs';
import { startDevServer, type DevServer } from '../toolchain/devServer.ts';
import { freePort } from '../toolchain/ports.ts';
import { findTemporalCli } from '../toolchain/temporalCli.ts';
import { readCpuSeconds, readMemory, type MemoryReading } from './procStats.ts';

export class RestartableTemporal {
  readonly dataDir: string;
  readonly logFile: string;
  #server: DevServer | undefined;
  #port = 0;
  #uiPort = 0;
  #cliPath = '';
  #cpuOfEarlierIncarnations = 0;
  starts = 0;

  constructor(dataDir: string, logFile: string) {
    this.dataDir = dataDir;
    this.logFile = logFile;
  }

  get address(): string {
    if (!this.#port) throw new Error('the Temporal dev server was never started');
    return `127.0.0.1:${this.#port}`;
  }

  get pid(): number | undefined {
    const p = this.#server?.process;
    return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
  }

  get cliPath(): string {
    return this.#cliPath;
  }

  async start(): Promise<void> {
    if (this.pid !== undefined) throw new Error(`the Temporal dev server is already running (pid ${this.pid})`);
    this.#cliPath ||= await findTemporalCli();
    this.#port ||= await freePort();
    this.#uiPort ||= await freePort();
    fs.mkdirSync(this.dataDir, { recursive: true });
    const log = fs.createWriteStream(this.logFile, { flags: 'a' });
    log.write(`\n===== ${new Date().toISOString()} start temporal on port ${this.#port}\n`);
    // The CLI picks its HTTP API port itself, at random, and now and then picks the very port it is
    // about to serve gRPC on ("bind: address already in use"): such a start is simply tried again.
    for (let attempt = 1; ; attempt++) {
      try {
        this.#server = await startDevServer({
          dataDir: this.dataDir,
          port: this.#port,
          uiPort: this.#uiPort,
          cliPath: this.#cliPath,
          // Restarting right after a kill: the port may need a moment, the schema is already there.
          startTimeoutMs: 120_000,
          log: (line) => log.write(`${line}\n`),
        });
        this.#server.process.once('exit', () => log.end());
        break;
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test((err as Error).message)) {
          log.end();
          throw err;
        }
        log.write(`start attempt ${attempt} failed on a port clash; trying again\n`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    this.starts += 1;
  }

  async kill9(): Promise<void> {
    const server = this.#server;
    if (!server || this.pid === undefined) return;
    this.#cpuOfEarlierIncarnations += readCpuSeconds(server.process.pid!) ?? 0;
    const exited = new Promise<void>((resolve) => server.process.once('exit', () => resolve()));
    server.process.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid !== undefined) this.#cpuOfEarlierIncarnations += readCpuSeconds(pid) ?? 0;
    await this.#server?.stop();
  }

  memory(): MemoryReading | null {
    const pid = this.pid;
    return pid === undefined ? null : readMemory(pid);
  }

  /** CPU seconds over every incarnation so far. */
  cpuSeconds(): number {
    const pid = this.pid;
    return this.#cpuOfEarlierIncarnations + (pid === undefined ? 0 : (readCpuSeconds(pid) ?? 0));
  }
}
