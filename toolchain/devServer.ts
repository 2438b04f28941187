/**
 * Runs the Temporal dev server (`temporal server start-dev`) as a child process with a SQLite
 * database file, so workflow state survives restarts of the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import YAML from 'yaml';
import { z } from 'zod';
import { searchAttributeCliArgs } from '../workflows/searchAttributes.ts';
import { guardChild } from './orphanGuard.ts';
import { freePort } from './ports.ts';
import { findTemporalCli } from './temporalCli.ts';

/** Temporal server settings hitloop relies on; a shared server reads the same file (docker-compose.yml). */
export const TEMPORAL_DYNAMIC_CONFIG_FILE = fileURLToPath(new URL('../deploy/temporal/dynamicconfig.yaml', import.meta.url));

const DynamicConfigSchema = z.record(z.string(), z.array(z.object({ value: z.unknown() })).length(1));

/** The settings of TEMPORAL_DYNAMIC_CONFIG_FILE as `--dynamic-config-value KEY=VALUE` flags of `temporal server start-dev`. */
export function devServerDynamicConfigArgs(): string[] {
  const parsed = DynamicConfigSchema.safeParse(YAML.parse(fs.readFileSync(TEMPORAL_DYNAMIC_CONFIG_FILE, 'utf8')));
  if (!parsed.success) {
    throw new Error(`${TEMPORAL_DYNAMIC_CONFIG_FILE}: each setting must be a list of one { value } (no constraints): ${parsed.error.message}`);
  }
  return Object.entries(parsed.data).flatMap(([key, [setting]]) => ['--dynamic-config-value', `${key}=${JSON.stringify(setting!.value)}`]);
}

export interface DevServerOptions {
  /** Directory for `temporal.db`; created if missing. */
  dataDir: string;
  /** Front-end gRPC port; a free one when omitted. */
  port?: number;
  /** Web UI port; a free one when omitted. */
  uiPort?: number;
  ip?: string;
  namespace?: string;
  /** The `temporal` binary; found (or built) with findTemporalCli when omitted. */
  cliPath?: string;
  /** How long to wait for the server to answer (default 90 s: the first start creates the schema). */
  startTimeoutMs?: number;
  /** Receives our progress lines and the server's own output. */
  log?: (line: string) => void;
}

export interface DevServer {
  /** `host:port` of the front-end gRPC service. */
  address: string;
  uiUrl: string;
  namespace: string;
  dbFile: string;
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_LINES = 40;

/** Servers still running, killed if this process exits without stopping them (no orphans). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const log = opts.log ?? (() => {});
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const port = opts.port ?? (await freePort(ip));
  const uiPort = opts.uiPort ?? (await freePort(ip));
  // Chosen here too, not by the CLI: its own pick of a "random free port" happens before the server
  // binds `port`, so it could take that very port (seen in CI: "bind: address already in use").
  const httpPort = await freePort(ip);
  const metricsPort = await freePort(ip);
  const cli = opts.cliPath ?? (await findTemporalCli({ log }));
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const dbFile = path.join(path.resolve(opts.dataDir), 'temporal.db');

  const args = [
    'server', 'start-dev',
    '--db-filename', dbFile,
    '--ip', ip,
    '--port', String(port),
    '--ui-port', String(uiPort),
    '--http-port', String(httpPort),
    '--metrics-port', String(metricsPort),
    '--namespace', namespace,
    '--log-level', 'warn',
    ...searchAttributeCliArgs(),
    ...devServerDynamicConfigArgs(),
  ];
  log(`Starting Temporal dev server: ${cli} ${args.join(' ')}`);
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  // The exit handler above does not run on SIGKILL; the guard stops the server then.
  if (child.pid !== undefined) guardChild(child.pid);

  const output: string[] = [];
  const onOutput = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      log(line);
    }
    output.splice(0, Math.max(0, output.length - OUTPUT_TAIL_LINES));
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);

  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`could not be started: ${err.message}`));
    child.once('exit', (code, signal) => resolve(`exited with ${code ?? `signal ${signal}`}`));
  });
  // Bookkeeping only (`exited` never rejects); stop() awaits `exited` itself.
  void exited.then(() => running.delete(child));

  const address = `${ip}:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(killer);
  };

  const timeoutMs = opts.startTimeoutMs ?? 90_000;
  const giveUp = new AbortController();
  const failure = await Promise.race([
    waitUntilServing(address, namespace, timeoutMs, giveUp.signal).then(
      () => undefined,
      (err: Error) => `did not answer at ${address} within ${timeoutMs} ms (${err.message})`,
    ),
    exited,
  ]);
  giveUp.abort();
  if (failure !== undefined) {
    await stop();
    const tail = output.length ? output.join('\n') : '(no output)';
    throw new Error(
      `Temporal dev server ${failure}. Command: ${cli} ${args.join(' ')}\n` +
        `Check that the ports are free and ${dbFile} is writable. Server output:\n${tail}`,
    );
  }
  log(`Temporal dev server ready at ${address} (UI http://${ip}:${uiPort}, db ${dbFile})`);
  return { address, uiUrl: `http://${ip}:${uiPort}`, namespace, dbFile, process: child, stop };
}

/** Connects, and asks for the namespace, until both succeed: then workers and clients can start. */
async function waitUntilServing(
  address: string,
  namespace: string,
  timeoutMs: number,
  abandoned: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = new Error('no attempt finished');
  while (Date.now() < deadline && !abandoned.aborted) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new Error(lastError instanceof Error ? lastError.message : String(lastError));
}
