/**
 * Memory and CPU of a process, read from /proc (Linux): what the benchmarks report and what the
 * chaos harness logs. VmHWM is the peak resident set since the process started.
 */
import fs from 'node:fs';

export interface MemoryReading {
  /** Resident set now, in bytes. */
  rss: number;
  /** Peak resident set since start (VmHWM), in bytes. */
  peakRss: number;
}

export function readMemory(pid: number): MemoryReading | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null; // the process has exited
  }
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), peakRss: kb('VmHWM') };
}

const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds the process has used (its own, not its children's). */
export function readCpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces; fields after it are fixed.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** Follows a process's RSS over time by sampling, for peaks VmHWM cannot give (e.g. after a restart). */
export class MemorySampler {
  readonly #pid: () => number | undefined;
  #timer: NodeJS.Timeout | undefined;
  peakRss = 0;

  constructor(pid: () => number | undefined, everyMs = 250) {
    this.#pid = pid;
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  sample(): void {
    const pid = this.#pid();
    if (pid === undefined) return;
    const m = readMemory(pid);
    if (m) this.peakRss = Math.max(this.peakRss, m.rss, m.peakRss);
  }

  stop(): number {
    this.sample();
    clearInterval(this.#timer);
    return this.peakRss;
  }
}

export const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
