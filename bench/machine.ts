/** The machine a benchmark ran on, stored with its results so runs can be compared. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { Database } from '../model/database.ts';

export interface MachineDescription {
  os: string;
  kernel: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  temporalCli: string;
  database: string;
  /** 1-minute load average when the benchmark started: other work on the machine skews the figures. */
  loadAverageAtStart: number;
}

function osName(): string {
  try {
    const release = fs.readFileSync('/etc/os-release', 'utf8');
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(release);
    if (pretty) return pretty[1]!;
  } catch {
    // not Linux or no os-release: fall back to the kernel's name
  }
  return `${os.type()} ${os.release()}`;
}

export async function describeMachine(opts: { temporalCliPath: string; db: Database }): Promise<MachineDescription> {
  let temporalCli: string;
  try {
    temporalCli = execFileSync(opts.temporalCliPath, ['--version'], { encoding: 'utf8' }).trim();
  } catch (err) {
    temporalCli = `unknown (${(err as Error).message})`;
  }
  let database: string;
  if (opts.db.dialect === 'postgresql') {
    const rows: Array<{ server_version: string }> = await opts.db.em().getConnection().execute('show server_version');
    database = `PostgreSQL ${rows[0]?.server_version ?? '?'}`;
  } else {
    const rows: Array<{ v: string }> = await opts.db.em().getConnection().execute('select sqlite_version() as v');
    database = `SQLite ${rows[0]?.v ?? '?'} (node:sqlite, WAL)`;
  }
  const cpus = os.cpus();
  return {
    os: osName(),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    temporalCli,
    database,
    loadAverageAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}
