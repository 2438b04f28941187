/**
 * `hitloop simulate <runId> --workers N`: scripted workers do the run's units over the real gateway
 * protocol; exits 0 once the run has no more work for them.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { loadSettings } from '../../config/settings.ts';
import { openDatabase } from '../../model/database.ts';
import { findRunForSimulation } from '../../simulate/findRun.ts';
import { runSimulation, type SimulationSummary } from '../../simulate/simulate.ts';

function wholeNumber(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be a whole number >= ${min}`);
    return n;
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

interface SimulateOptions {
  workers: number;
  gateway?: string[];
  thinkMs: number;
  dropRate: number;
  dropPauseMs: number;
  liveActions: number;
  maxUnits: number;
  workerPrefix: string;
  timeout?: number;
  seed?: number;
  json?: boolean;
}

export function formatSummary(s: SimulationSummary): string {
  const refusals = Object.entries(s.refusals).map(([reason, n]) => `${reason} ${n}`).join(', ') || 'none';
  const ended = Object.entries(s.ended).map(([status, n]) => `${status} ${n}`).join(', ') || 'none';
  const lines = [
    `simulated ${s.workers.length} workers on run ${s.runId} for ${(s.durationMs / 1000).toFixed(1)} s${s.timedOut ? ' (timed out)' : ''}`,
    `units submitted: ${s.submitted} (assigned ${s.assigned}, registrations ${s.registrations})`,
    `refusals: ${refusals}`,
    `ended without submitting: ${ended}`,
    `onboardings ${s.onboardings}, drops ${s.drops}, resumes ${s.resumes}, lost connections ${s.connectionsLost}, live sent ${s.liveSent}, live received ${s.liveReceived}`,
  ];
  for (const error of s.errors) lines.push(`error: ${error}`);
  return lines.join('\n');
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('scripted workers take, act on and submit units of a run over the gateway protocol')
    .argument('<runId>', 'the run to work on')
    .option('--workers <n>', 'simulated workers', wholeNumber(1), 5)
    .option('--gateway <url>', 'gateway URL (repeat, or comma-separate, for several; default: the one the run launched units with)', collect)
    .option('--think-ms <ms>', 'mean time on a unit before submitting', wholeNumber(0), 0)
    .option('--drop-rate <p>', 'chance per unit of dropping the connection and resuming', fraction, 0)
    .option('--drop-pause-ms <ms>', 'time away after a drop', wholeNumber(0), 200)
    .option('--live-actions <n>', 'live updates per unit before submitting', wholeNumber(0), 0)
    .option('--max-units <n>', 'units per worker before it stops (0: no limit)', wholeNumber(0), 0)
    .option('--worker-prefix <prefix>', 'worker ids are <prefix><n>', 'sim-')
    .option('--timeout <seconds>', 'give up after this long (exit 1)', wholeNumber(1))
    .option('--seed <n>', 'seed for think times, drops and answers', wholeNumber(0))
    .option('--json', 'print the summary as JSON')
    .action(async (runId: string, opts: SimulateOptions) => {
      const settings = loadSettings();
      const db = await openDatabase(settings.databaseUrl);
      let run;
      try {
        run = await findRunForSimulation(db, runId);
      } finally {
        await db.close();
      }
      const gateways = opts.gateway && opts.gateway.length > 0 ? opts.gateway : [run.gatewayUrl ?? settings.gatewayUrl];
      const summary = await runSimulation({
        gatewayUrl: gateways,
        runId,
        workers: opts.workers,
        thinkMs: opts.thinkMs,
        dropRate: opts.dropRate,
        dropPauseMs: opts.dropPauseMs,
        liveActions: opts.liveActions,
        maxUnitsPerWorker: opts.maxUnits,
        workerPrefix: opts.workerPrefix,
        provider: run.providerType,
        secret: settings.secret,
        timeoutMs: opts.timeout ? opts.timeout * 1000 : undefined,
        seed: opts.seed,
        onProgress: opts.json
          ? undefined
          : (s) => process.stderr.write(`simulate: submitted ${s.submitted}, assigned ${s.assigned}, drops ${s.drops}, resumes ${s.resumes}\n`),
      });
      process.stdout.write(`${opts.json ? JSON.stringify(summary) : formatSummary(summary)}\n`);
      process.exitCode = summary.errors.length === 0 && !summary.timedOut ? 0 : 1;
    });
}
