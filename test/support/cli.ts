/** Runs the `hitloop` command line (`node cli/main.ts`) as a child process, as a user would. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI_MAIN = path.join(REPO_ROOT, 'cli', 'main.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliEnv {
  TEMPORAL_ADDRESS: string;
  HITLOOP_DATABASE_URL: string;
  HITLOOP_TASK_QUEUE: string;
  /** Anything else, e.g. HITLOOP_CONFIG_FILE. */
  [name: string]: string;
}

export interface RunningCli {
  pid: number | undefined;
  done: Promise<CliResult>;
}

/** Starts `hitloop <args>`; `done` resolves when it exits (killed after `timeoutMs`). */
export function startCli(args: string[], env: CliEnv, timeoutMs = 120_000): RunningCli {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HITLOOP_LOG_LEVEL: 'warn', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hitloop ${args.join(' ')} did not exit within ${timeoutMs} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { pid: child.pid, done };
}

export const runCli = (args: string[], env: CliEnv, timeoutMs?: number): Promise<CliResult> => startCli(args, env, timeoutMs).done;

export interface DevProcess {
  child: ChildProcess;
  /** stdout and stderr in arrival order, as a terminal shows them. */
  output: () => string;
}

/**
 * `hitloop dev` as a person starts it, on the given ports and data directory, with the test's Temporal
 * CLI and a SQLite database in that directory. `args` come after the ports (`--demo`, ...).
 */
export function spawnDev(
  dataDir: string,
  ports: { temporal: number; ui: number; gateway: number },
  opts: { args?: string[]; logLevel: string; temporalCli: string },
): DevProcess {
  const child = spawn(
    process.execPath,
    [
      path.join(REPO_ROOT, 'cli', 'main.ts'),
      'dev',
      ...(opts.args ?? []),
      '--data-dir',
      dataDir,
      '--temporal-port',
      String(ports.temporal),
      '--ui-port',
      String(ports.ui),
      '--gateway-port',
      String(ports.gateway),
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        TEMPORAL_CLI_PATH: opts.temporalCli,
        HITLOOP_CONFIG_FILE: path.join(dataDir, 'no-config.yaml'),
        HITLOOP_DATABASE_URL: `sqlite://${path.join(dataDir, 'hitloop.db')}`,
        HITLOOP_LOG_LEVEL: opts.logLevel,
      },
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return { child, output: () => output };
}
