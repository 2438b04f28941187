/**
 * `hitloop stack`: the production shape on this machine (stack/productionStack.ts): a real Temporal
 * cluster on PostgreSQL, its Web UI, N workers and M gateways behind HAProxy over TLS. Prints every
 * URL, stops everything on Ctrl-C, and resumes its runs when started again on the same state.
 * `--demo` launches examples/static-form.yaml and completes it with simulated workers over wss://.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadSettings } from '../../config/settings.ts';
import { redactDatabaseUrl } from '../../model/databaseUrl.ts';
import { connectOperator } from '../../operator/api.ts';
import { type ProductionStack, startProductionStack } from '../../stack/productionStack.ts';
import type { ServicesMode } from '../../stack/temporalCluster.ts';
import { createProgressMeter } from '../progress.ts';
import { parsePort } from './gateway.ts';
import { formatStatus } from './runs.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(REPO_ROOT, 'examples', 'static-form.yaml');

interface StackOptions {
  postgres: string;
  databasePrefix: string;
  stateDir?: string;
  services: ServicesMode;
  workers: number;
  gateways: number;
  httpsPort: number;
  temporalPort: number;
  uiPort: number;
  ui: boolean;
  demo?: boolean;
  demoWorkers: number;
  exitWhenDone?: boolean;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new InvalidArgumentError('must be a whole number from 1 to 32');
  return n;
}

export function registerStackCommand(program: Command): void {
  program
    .command('stack')
    .description('run the production shape here: Temporal cluster on PostgreSQL, Web UI, workers and gateways behind HAProxy (TLS)')
    .option(
      '--postgres <url>',
      'PostgreSQL server whose role may create databases',
      process.env.HITLOOP_STACK_POSTGRES_URL ?? 'postgresql://hitloop:hitloop@127.0.0.1:5432/postgres',
    )
    .option(
      '--database-prefix <prefix>',
      'prefix of the databases <prefix>temporal, <prefix>temporal_visibility, <prefix>hitloop',
      'hitloop_stack_',
    )
    .option('--state-dir <dir>', 'config, certificate, secret and logs (default: <data dir>/stack); the same one resumes')
    .addOption(new Option('--services <mode>', 'Temporal services in one process or four').choices(['single', 'split']).default('single'))
    .option('--workers <n>', 'hitloop worker processes', parseCount, 2)
    .option('--gateways <n>', 'gateway processes behind the proxy', parseCount, 2)
    .option('--https-port <port>', 'the proxy (https:// and wss://)', parsePort, 8443)
    .option('--temporal-port <port>', 'Temporal frontend gRPC (below 32768)', parsePort, 7233)
    .option('--ui-port <port>', 'Temporal Web UI', parsePort, 8080)
    .option('--no-ui', 'no Web UI (and no UI server build)')
    .option('--demo', 'launch examples/static-form.yaml and complete it with simulated workers over wss://')
    .option('--demo-workers <n>', 'simulated workers for --demo', parseCount, 5)
    .option('--exit-when-done', 'with --demo: stop everything once the demo run has ended (exit 0 if it completed)')
    .action(async (opts: StackOptions) => {
      process.exitCode = await runStack(opts);
    });
}

async function runStack(opts: StackOptions): Promise<number> {
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const stateDir = path.resolve(opts.stateDir ?? path.join(loadSettings().dataDir, 'stack'));
  const started = Date.now();
  say(`hitloop stack: state in ${stateDir}`);
  const stack = await startProductionStack({
    stateDir,
    postgresUrl: opts.postgres,
    databasePrefix: opts.databasePrefix,
    services: opts.services,
    workers: opts.workers,
    gateways: opts.gateways,
    httpsPort: opts.httpsPort,
    temporalPort: opts.temporalPort,
    uiPort: opts.ui ? opts.uiPort : false,
    log: (line) => say(`  ${line}`),
  });
  say(`hitloop stack: up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  say(
    `  Task pages:   ${stack.httpsUrl}/task/<runId>   (WebSocket ${stack.httpsUrl.replace('https:', 'wss:')}/ws; self-signed certificate ${stack.certificateFile})`,
  );
  say(`  Temporal:     ${stack.temporalAddress} (namespace ${stack.namespace}; ${stack.temporal.map((p) => p.spec.name).join(', ')})`);
  if (stack.uiUrl) say(`  Web UI:       ${stack.uiUrl}`);
  say(`  Database:     ${redactDatabaseUrl(stack.databaseUrl)}`);
  for (const [name, url] of stack.metricsUrls) say(`  Metrics:      ${url}  (${name})`);
  for (const [name, url] of stack.sdkMetricsUrls) say(`  SDK metrics:  ${url}  (${name})`);
  say(`  Logs:         ${path.join(stateDir, 'logs')}`);
  say(
    `  In another shell: TEMPORAL_ADDRESS=${stack.temporalAddress} HITLOOP_DATABASE_URL='${redactDatabaseUrl(stack.databaseUrl)}' HITLOOP_SECRET=<${path.join(stateDir, 'stack.json')}> bin/hitloop runs`,
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      say('hitloop stack: stopping ...');
      await stack.stop();
      say('hitloop stack: stopped (start it again with the same --state-dir to resume)');
    })());
  const finished = new Promise<void>((resolve) => {
    process.once('SIGINT', () => void stop().then(resolve));
    process.once('SIGTERM', () => void stop().then(resolve));
  });

  let exitCode = 0;
  if (opts.demo) {
    const operator = await connectOperator(stack.settings);
    try {
      const { runId } = await operator.launchFile(EXAMPLE, []);
      say(`demo: launched run ${runId}; simulated workers connect to ${stack.httpsUrl.replace('https:', 'wss:')}/ws`);
      const meter = createProgressMeter();
      const simulation = simulateOverTls(runId, stack, opts.demoWorkers);
      const final = await operator.wait(runId, { onProgress: (s) => say(`demo: ${meter(s)}`) });
      const simulated = await simulation;
      say(formatStatus(final));
      exitCode = final.status === 'completed' && simulated === 0 ? 0 : 1;
    } finally {
      await operator.close();
    }
    if (opts.exitWhenDone) {
      await stop();
      return exitCode;
    }
  }
  say('hitloop stack: running; Ctrl-C stops everything.');
  await finished;
  return exitCode;
}

/**
 * `hitloop simulate` in a child process that trusts the stack's certificate: Node reads
 * NODE_EXTRA_CA_CERTS only at start, so the simulated workers cannot share this process.
 */
export function simulateOverTls(runId: string, stack: ProductionStack, workers: number, extraArgs: string[] = []): Promise<number> {
  return new Promise((resolve) => {
    const args = ['simulate', runId, '--workers', String(workers), '--think-ms', '200', '--gateway', stack.httpsUrl, ...extraArgs];
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'cli', 'main.ts'), ...args], {
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: stack.certificateFile,
        HITLOOP_DATABASE_URL: stack.databaseUrl,
        HITLOOP_SECRET: stack.settings.secret,
        TEMPORAL_ADDRESS: stack.temporalAddress,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
