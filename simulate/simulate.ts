/**
 * `runSimulation`: scripted workers that do a run's units over the real gateway protocol, for
 * demos, tests and benchmarks. Resolves once every worker has been told the run has no more work
 * for it (run_not_running, max_for_task, ...), or when `timeoutMs` passes.
 *
 *   const summary = await runSimulation({ gatewayUrl: 'http://127.0.0.1:3000', runId, workers: 10 });
 */
import { localWorkerParams } from '../providers/local.ts';
import { emptyStats, runScriptedWorker, type SimulationStats, type WorkerOutcome } from './scriptedWorker.ts';

export interface SimulationOptions {
  /** One gateway, or several: workers are spread over them and move on to the next after a lost connection. */
  gatewayUrl: string | string[];
  runId: string;
  workers: number;
  /** Mean time spent on a unit before submitting (ms; each unit takes 0.5x to 1.5x of it). Default 0. */
  thinkMs?: number;
  /** Chance per unit of dropping the connection and resuming before submitting. Default 0. */
  dropRate?: number;
  /** Time away after a drop (ms). Default 200. Beyond the run's reconnect window the unit is lost. */
  dropPauseMs?: number;
  /** Live updates each agent sends before submitting. Default 0. */
  liveActions?: number;
  /** Wait between registrations refused for lack of units (ms). Default 250. */
  pollMs?: number;
  /** Units per worker before it stops on its own (0: no limit). Default 0. */
  maxUnitsPerWorker?: number;
  /** Answers simulated workers give to the run's onboarding form (default: made-up valid values). */
  onboardingAnswers?: Record<string, unknown>;
  /** Worker ids are `<prefix><n>`, n from 1. Default `sim-`. */
  workerPrefix?: string;
  /** The run's provider: `mock` links carry worker_id, `local` links are signed with `secret`. Default mock. */
  provider?: string;
  secret?: string;
  /** Overrides how each worker's link parameters are made. */
  workerParams?: (workerId: string) => Record<string, string>;
  /** Stop everything after this long (ms); workers still busy finish as `aborted`. */
  timeoutMs?: number;
  /** Seed for think times, drops and answers (default: random). */
  seed?: number;
  onProgress?: (stats: Readonly<SimulationStats>) => void;
}

export interface SimulationSummary extends SimulationStats {
  runId: string;
  workers: WorkerOutcome[];
  errors: string[];
  durationMs: number;
  timedOut: boolean;
}

/** `http://host:port` (or `ws://.../ws`) to the gateway's WebSocket URL. */
export function gatewayWebSocketUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  else if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new Error(`gateway URL ${url} must start with http://, https://, ws:// or wss://`);
  }
  if (!parsed.pathname.endsWith('/ws')) parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/ws`;
  parsed.search = '';
  return parsed.toString();
}

/** A small deterministic generator (mulberry32): a seeded simulation repeats itself. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runSimulation(opts: SimulationOptions): Promise<SimulationSummary> {
  if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error(`workers must be a whole number >= 1 (got ${opts.workers})`);
  const urls = (Array.isArray(opts.gatewayUrl) ? opts.gatewayUrl : [opts.gatewayUrl]).map(gatewayWebSocketUrl);
  if (urls.length === 0) throw new Error('give at least one gateway URL');
  const provider = opts.provider ?? 'mock';
  const paramsFor =
    opts.workerParams ??
    ((workerId: string): Record<string, string> => {
      if (provider === 'local') {
        if (!opts.secret) throw new Error('simulating a run of the local provider needs the secret its links are signed with');
        return localWorkerParams(opts.secret, opts.runId, workerId);
      }
      return { worker_id: workerId };
    });
  const stats = emptyStats();
  const controller = new AbortController();
  let timedOut = false;
  const timer =
    opts.timeoutMs && opts.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, opts.timeoutMs)
      : undefined;
  const progress = opts.onProgress ? setInterval(() => opts.onProgress!(stats), 1_000) : undefined;
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const started = Date.now();

  const results = await Promise.allSettled(
    Array.from({ length: opts.workers }, (_, i) => {
      const workerId = `${opts.workerPrefix ?? 'sim-'}${i + 1}`;
      return runScriptedWorker({
        runId: opts.runId,
        workerId,
        params: paramsFor(workerId),
        gatewayUrls: urls,
        firstGateway: i,
        thinkMs: opts.thinkMs ?? 0,
        dropRate: opts.dropRate ?? 0,
        dropPauseMs: opts.dropPauseMs ?? 200,
        liveActions: opts.liveActions ?? 0,
        pollMs: opts.pollMs ?? 250,
        maxUnits: opts.maxUnitsPerWorker ?? 0,
        ...(opts.onboardingAnswers ? { onboardingAnswers: opts.onboardingAnswers } : {}),
        random: seededRandom(seed + i * 7919),
        signal: controller.signal,
        stats,
      });
    }),
  );
  clearTimeout(timer);
  clearInterval(progress);
  opts.onProgress?.(stats);
  const workers: WorkerOutcome[] = [];
  const errors: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') workers.push(r.value);
    else {
      errors.push((r.reason as Error).message ?? String(r.reason));
      workers.push({ workerId: `${opts.workerPrefix ?? 'sim-'}${i + 1}`, submitted: 0, finishedBecause: 'error' });
    }
  });
  return { runId: opts.runId, ...stats, workers, errors, durationMs: Date.now() - started, timedOut };
}
