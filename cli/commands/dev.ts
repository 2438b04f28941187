/**
 * `hitloop dev`: the whole embedded stack in one command: a Temporal dev server with file
 * persistence and Web UI, a worker, and the gateway, on SQLite in the data directory.
 * `--demo` also launches examples/label-overlap.yaml and runs simulated workers until it completes.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadSettings, sqliteUrlFor, type Settings } from '../../config/settings.ts';
import { startDevServer } from '../../toolchain/devServer.ts';
import { startGateway } from '../../gateway/server.ts';
import { connectOperator } from '../../operator/api.ts';
import { runSimulation } from '../../simulate/simulate.ts';
import { createHitloopWorker, installSdkLogging } from '../../workers/worker.ts';
import { createLogger } from '../logger.ts';
import { createProgressMeter } from '../progress.ts';
import { formatStatus } from './runs.ts';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'label-overlap.yaml');

interface DevOptions {
  dataDir?: string;
  temporalPort: string;
  uiPort: string;
  gatewayPort: string;
  demo?: boolean;
  demoWorkers: string;
  exitWhenDone?: boolean;
}

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('start the embedded stack: Temporal dev server (with Web UI), a worker and the gateway')
    .option('--data-dir <dir>', 'where the SQLite database and the Temporal state live (default: the configured data dir)')
    .option('--temporal-port <port>', 'Temporal front-end port', '7233')
    .option('--ui-port <port>', 'Temporal Web UI port', '8233')
    .option('--gateway-port <port>', 'gateway (task pages and WebSocket) port', '3000')
    .option('--demo', `launch ${path.relative(process.cwd(), EXAMPLE)} and complete it with simulated workers`)
    .option('--demo-workers <n>', 'simulated workers for --demo', '5')
    .option('--exit-when-done', 'with --demo: stop everything once the demo run has ended (exit 0 if it completed)')
    .action(async (opts: DevOptions) => {
      process.exitCode = await runDev(opts);
    });
}

async function runDev(opts: DevOptions): Promise<number> {
  const base = loadSettings();
  const dataDir = path.resolve(opts.dataDir ?? base.dataDir);
  const gatewayPort = Number(opts.gatewayPort);
  const settings: Settings = {
    ...base,
    dataDir,
    temporalAddress: `127.0.0.1:${Number(opts.temporalPort)}`,
    databaseUrl: process.env.HITLOOP_DATABASE_URL ?? (opts.dataDir ? sqliteUrlFor(path.join(dataDir, 'hitloop.db')) : base.databaseUrl),
    gatewayPort,
    gatewayUrl: process.env.HITLOOP_GATEWAY_URL ?? `http://127.0.0.1:${gatewayPort}`,
  };
  // Readable lines, not JSON: a person reads this terminal, between the progress lines.
  const log = createLogger(settings.logLevel, 'dev', { pretty: true });
  installSdkLogging(log, settings.logLevel);
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };

  say(`hitloop dev: starting Temporal (data in ${dataDir}) ...`);
  const temporal = await startDevServer({ dataDir, port: Number(opts.temporalPort), uiPort: Number(opts.uiPort) });
  const worker = await createHitloopWorker({ settings, log });
  const workerRun = worker.run();
  const gateway = await startGateway({ settings, log, port: gatewayPort });
  say(`  Temporal:  ${temporal.address} (namespace ${settings.temporalNamespace})`);
  say(`  Web UI:    ${temporal.uiUrl}`);
  say(`  Gateway:   ${settings.gatewayUrl}`);
  say(`  Console:   ${settings.gatewayUrl}/admin${settings.operatorPassword ? '' : ' (off: set HITLOOP_OPERATOR_PASSWORD)'}`);
  say(`  Database:  ${settings.databaseUrl.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@')}`);
  say(`  In another shell: TEMPORAL_ADDRESS=${temporal.address} HITLOOP_DATABASE_URL=${settings.databaseUrl} bin/hitloop runs`);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      say('hitloop dev: stopping ...');
      await gateway.close();
      worker.shutdown();
      await workerRun.catch(() => undefined);
      await temporal.stop();
    })());
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));

  let exitCode = 0;
  if (opts.demo) {
    const operator = await connectOperator(settings);
    try {
      const { runId } = await operator.launchFile(EXAMPLE, []);
      say(
        `demo: launched run ${runId} from ${path.relative(process.cwd(), EXAMPLE)}; see it in ${temporal.uiUrl}/namespaces/default/workflows/taskrun-${runId}`,
      );
      const meter = createProgressMeter();
      const simulation = runSimulation({ gatewayUrl: settings.gatewayUrl, runId, workers: Number(opts.demoWorkers), thinkMs: 200 });
      const final = await operator.wait(runId, { onProgress: (s) => say(`demo: ${meter(s)}`) });
      await simulation;
      say(formatStatus(final));
      exitCode = final.status === 'completed' ? 0 : 1;
    } finally {
      await operator.close();
    }
    if (opts.exitWhenDone) {
      await stop();
      return exitCode;
    }
  }
  say('hitloop dev: running; Ctrl-C stops everything.');
  await workerRun;
  return exitCode;
}
