/** Runs the `hitloop` command line (`node cli/main.ts`) as a child process, as a user would. */
import { spawn } from 'node:child_process';
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
