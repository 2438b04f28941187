/**
 * Finds a Temporal CLI (`temporal`, which embeds the dev server), building the pinned version from
 * the Go module proxy when none is installed. No prebuilt binary is ever downloaded: only the Go
 * module proxy is reachable from hitloop's machines.
 *
 * Order: $TEMPORAL_CLI_PATH, `temporal` on PATH, the cached build, a fresh build into the cache.
 * Run as a script (`node toolchain/temporalCli.ts`) it prints the path, or the reason and exits 1.
 */
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

/** A build takes minutes on two cores; this bounds a hung one (network stall), not a slow one. */
const BUILD_TIMEOUT_MS = 40 * 60_000;
const VERIFY_TIMEOUT_MS = 30_000;
const STDERR_TAIL_LINES = 25;

export interface FindTemporalCliOptions {
  /** Build from source when nothing is found (default true). */
  build?: boolean;
  log?: (line: string) => void;
  /** Environment to read TEMPORAL_CLI_PATH, PATH, XDG_CACHE_HOME and HOME from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export function hitloopCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'hitloop');
}

/** Directory that `go install` writes the pinned CLI into (its GOBIN). */
export function temporalCliCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(hitloopCacheDir(env), 'temporal-cli', TEMPORAL_CLI_VERSION);
}

export function cachedTemporalCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(temporalCliCacheDir(env), 'temporal');
}

export async function findTemporalCli(opts: FindTemporalCliOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});

  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutableFile(explicit)) {
      throw new Error(
        `TEMPORAL_CLI_PATH is set to ${explicit}, but that is not an executable file. ` +
          'Point TEMPORAL_CLI_PATH at a Temporal CLI binary, or unset it to use `temporal` on PATH or a build.',
      );
    }
    const version = await cliVersion(explicit);
    if (version === undefined) {
      throw new Error(
        `TEMPORAL_CLI_PATH is set to ${explicit}, but \`${explicit} --version\` did not report a Temporal CLI version. ` +
          'Point TEMPORAL_CLI_PATH at a working Temporal CLI binary, or unset it.',
      );
    }
    log(`Temporal CLI from TEMPORAL_CLI_PATH: ${explicit} (${version})`);
    return explicit;
  }

  const onPath = whichSync('temporal', env.PATH);
  if (onPath) {
    const version = await cliVersion(onPath);
    if (version !== undefined) {
      log(`Temporal CLI on PATH: ${onPath} (${version})`);
      return onPath;
    }
    log(`Ignoring ${onPath} on PATH: \`--version\` did not report a Temporal CLI version`);
  }

  const cached = cachedTemporalCliPath(env);
  const cachedVersion = await verifiedVersion(cached);
  if (cachedVersion !== undefined) {
    log(`Temporal CLI cached build: ${cached} (${cachedVersion})`);
    return cached;
  }

  if (opts.build === false) {
    throw new Error(
      `No Temporal CLI found: TEMPORAL_CLI_PATH is not set, there is no \`temporal\` on PATH and no build at ${cached}. ` +
        'Run scripts/setup (it builds one with Go), or set TEMPORAL_CLI_PATH.',
    );
  }
  return buildTemporalCli(env, log);
}

/** Builds the pinned CLI into the cache, or waits for a build another process already runs. */
async function buildTemporalCli(env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<string> {
  const dir = temporalCliCacheDir(env);
  const target = cachedTemporalCliPath(env);
  fs.mkdirSync(dir, { recursive: true });

  const lock = path.join(dir, '.build.lock');
  while (!tryLock(lock)) {
    log(`Another process (pid ${readLockPid(lock)}) is building the Temporal CLI into ${dir}; waiting for it`);
    await waitForOtherBuild(lock, target);
    const version = await verifiedVersion(target);
    if (version !== undefined) {
      log(`Temporal CLI built by the other process: ${target} (${version})`);
      return target;
    }
    // The other build ended without a binary (failed or was killed): try ourselves.
  }
  try {
    const go = findGo(env);
    if (!go) {
      throw new Error(
        `No Temporal CLI found (TEMPORAL_CLI_PATH unset, no \`temporal\` on PATH, no build at ${target}) and Go is ` +
          `not installed to build one. Install Go 1.25 or newer (the build fetches ${TEMPORAL_CLI_PACKAGE}@${TEMPORAL_CLI_VERSION} ` +
          'from the Go module proxy), or set TEMPORAL_CLI_PATH to an existing `temporal` binary.',
      );
    }
    const args = ['install', `${TEMPORAL_CLI_PACKAGE}@${TEMPORAL_CLI_VERSION}`];
    log(`Building the Temporal CLI: CGO_ENABLED=0 GOBIN=${dir} ${go} ${args.join(' ')} (takes a few minutes)`);
    const logFile = path.join(hitloopCacheDir(env), 'logs', 'temporal-build.log');
    const result = await runLogged(go, args, { ...env, CGO_ENABLED: '0', GOBIN: dir }, logFile);
    if (result.code !== 0) {
      throw new Error(
        `Building the Temporal CLI failed (${go} ${args.join(' ')} exited with ${result.code}; full log in ${logFile}). ` +
          `Fix the Go toolchain (Go 1.25 or newer, with the Go module proxy reachable) or set TEMPORAL_CLI_PATH to an ` +
          `existing \`temporal\` binary. Last output:\n${result.tail.join('\n')}`,
      );
    }
    const version = await verifiedVersion(target);
    if (version === undefined) {
      throw new Error(
        `The Go build succeeded but ${target} is missing or does not run \`--version\`; see ${logFile}. ` +
          'Set TEMPORAL_CLI_PATH to an existing `temporal` binary to bypass the build.',
      );
    }
    log(`Built the Temporal CLI: ${target} (${version})`);
    return target;
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

export function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function whichSync(command: string, searchPath: string | undefined): string | undefined {
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Go on PATH, else the usual install locations (CI's PATH may lack /usr/local/go/bin). */
export function findGo(env: NodeJS.ProcessEnv): string | undefined {
  const onPath = whichSync('go', env.PATH);
  if (onPath) return onPath;
  const candidates = [env.GOROOT && path.join(env.GOROOT, 'bin', 'go'), '/usr/local/go/bin/go'];
  return candidates.find((c): c is string => !!c && isExecutableFile(c));
}

async function verifiedVersion(file: string): Promise<string | undefined> {
  return isExecutableFile(file) ? cliVersion(file) : undefined;
}

/** `temporal --version` prints e.g. "temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)". */
async function cliVersion(file: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)(file, ['--version'], { timeout: VERIFY_TIMEOUT_MS });
    const line = stdout.trim().split('\n')[0] ?? '';
    return /^temporal version /.test(line) ? line.replace(/^temporal version /, '') : undefined;
  } catch {
    return undefined;
  }
}

export function tryLock(lock: string): boolean {
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!isAlive(readLockPid(lock))) {
      // Left behind by a killed build.
      fs.rmSync(lock, { force: true });
      return tryLock(lock);
    }
    return false;
  }
}

export function readLockPid(lock: string): number {
  try {
    return Number(fs.readFileSync(lock, 'utf8').trim());
  } catch {
    return 0;
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until the other builder released its lock or died. */
export async function waitForOtherBuild(lock: string, target: string): Promise<void> {
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  while (fs.existsSync(lock) && isAlive(readLockPid(lock))) {
    if (Date.now() > deadline) {
      throw new Error(
        `Gave up waiting for the Temporal CLI build holding ${lock} (pid ${readLockPid(lock)}) to produce ${target}. ` +
          'Stop that process and remove the lock file, or set TEMPORAL_CLI_PATH.',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

export interface RunResult {
  code: number | string;
  tail: string[];
}

/** Runs a command, appending its output to logFile and keeping the last lines for error messages. */
export function runLogged(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<RunResult> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.createWriteStream(logFile, { flags: 'a' });
  out.write(`\n# ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
  const tail: string[] = [];
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    let partial = '';
    const collect = (chunk: Buffer) => {
      out.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      tail.push(...lines.filter((l) => l.trim() !== ''));
      tail.splice(0, Math.max(0, tail.length - STDERR_TAIL_LINES));
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let finished = false;
    // 'error' (spawn failed) and 'close' can both fire; report once.
    const finish = (code: number | string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (partial.trim()) tail.push(partial);
      out.end(() => resolve({ code, tail: tail.slice(-STDERR_TAIL_LINES) }));
    };
    child.on('error', (err) => {
      tail.push(err.message);
      finish('spawn error');
    });
    child.on('close', (code, signal) => finish(code ?? `signal ${signal}`));
  });
}

if (import.meta.main) {
  try {
    const cli = await findTemporalCli({ log: (line) => process.stderr.write(`${line}\n`) });
    process.stdout.write(`${cli}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
