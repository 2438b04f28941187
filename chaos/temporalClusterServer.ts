/**
 * The production Temporal (the cluster `hitloop stack` runs: four services on PostgreSQL, or one
 * process) as the Temporal of a harness or benchmark stack (chaos/stack.ts), in place of the dev
 * server: same surface as RestartableTemporal, its state in two scratch databases dropped by stop().
 * The benchmarks measure the same workload on both, side by side.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { postgresTargetFromUrl, prepareTemporalCluster, registerNamespace, setUpSchemas, type ServicesMode } from '../stack/temporalCluster.ts';
import { ensureTemporalServerBinaries, type TemporalServerBinaries } from '../toolchain/temporalServer.ts';
import type { ManagedProcess } from './managedProcess.ts';
import type { MemoryReading } from './procStats.ts';

export interface TemporalClusterServerOptions {
  /** Config and logs (`<stateDir>/logs/temporal-*.log`). */
  stateDir: string;
  /** A PostgreSQL server whose role may create databases. */
  postgresUrl: string;
  mode?: ServicesMode;
}

export class TemporalClusterServer {
  readonly stateDir: string;
  readonly mode: ServicesMode;
  readonly #postgresUrl: string;
  readonly #prefix = `hitloop_bench_tc_${randomBytes(3).toString('hex')}_`;
  #binaries: TemporalServerBinaries | undefined;
  #processes: ManagedProcess[] = [];
  #address = '';
  #cpuOfEarlierIncarnations = 0;
  starts = 0;

  constructor(opts: TemporalClusterServerOptions) {
    this.stateDir = opts.stateDir;
    this.mode = opts.mode ?? 'split';
    this.#postgresUrl = opts.postgresUrl;
  }

  get address(): string {
    if (!this.#address) throw new Error('the Temporal cluster was never started');
    return this.#address;
  }

  /** The frontend's pid (what clients talk to); undefined while it is down. */
  get pid(): number | undefined {
    return this.#processes[0]?.pid;
  }

  get logFile(): string {
    return path.join(this.stateDir, 'logs');
  }

  /** The server binary: describeMachine reports its version where the dev server reports the CLI's. */
  get cliPath(): string {
    return this.#binaries?.server ?? '';
  }

  /** `temporal-server --version`, e.g. "temporal version 1.29.1". */
  version(): string {
    return execFileSync(this.cliPath, ['--version'], { encoding: 'utf8' }).trim();
  }

  get databases(): { store: string; visibility: string } {
    return { store: `${this.#prefix}temporal`, visibility: `${this.#prefix}temporal_visibility` };
  }

  async start(): Promise<void> {
    if (this.#processes.length === 0) {
      this.#binaries = await ensureTemporalServerBinaries({ ui: false });
      const postgres = postgresTargetFromUrl(this.#postgresUrl);
      await setUpSchemas(this.#binaries, postgres, this.databases, () => {});
      const cluster = await prepareTemporalCluster({ binaries: this.#binaries, stateDir: this.stateDir, postgres, databases: this.databases, mode: this.mode });
      this.#processes = cluster.processes;
      this.#address = cluster.address;
    }
    for (const p of this.#processes) if (!p.running) await p.start();
    await registerNamespace(this.#address, 'default');
    this.starts += 1;
  }

  async kill9(): Promise<void> {
    for (const p of this.#processes) {
      this.#cpuOfEarlierIncarnations += p.cpuSeconds() ?? 0;
      await p.kill9();
    }
  }

  /** Stops every service and drops the two databases. */
  async stop(): Promise<void> {
    for (const p of [...this.#processes].reverse()) {
      this.#cpuOfEarlierIncarnations += p.cpuSeconds() ?? 0;
      await p.stop(20_000);
    }
    if (!this.#binaries) return;
    const admin = new pg.Client({ connectionString: this.#postgresUrl });
    await admin.connect();
    try {
      for (const name of Object.values(this.databases)) await admin.query(`drop database if exists "${name}" with (force)`);
    } finally {
      await admin.end();
    }
  }

  /** The sum over the services (resident sets add up: they are separate processes). */
  memory(): MemoryReading | null {
    const readings = this.#processes.map((p) => p.memory()).filter((m): m is MemoryReading => m !== null);
    if (readings.length === 0) return null;
    return readings.reduce((sum, m) => ({ rss: sum.rss + m.rss, peakRss: sum.peakRss + m.peakRss }));
  }

  /** CPU seconds of every service over every incarnation so far. */
  cpuSeconds(): number {
    return this.#cpuOfEarlierIncarnations + this.#processes.reduce((sum, p) => sum + (p.cpuSeconds() ?? 0), 0);
  }
}
