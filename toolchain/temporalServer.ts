/**
 * The real Temporal server (not the CLI's dev server) for `hitloop stack`: `temporal-server`
 * (go.temporal.io/server cmd/server), `temporal-sql-tool` (cmd/tools/sql) with the server's SQL
 * schema files, and the Web UI server (github.com/temporalio/ui-server/v2). Each is built once from
 * the Go module proxy into the cache, like the CLI (toolchain/temporalCli.ts), under a lock file so
 * two processes never build at once, and reused afterwards.
 *
 *   ~/.cache/hitloop/temporal-server/v1.29.1/{server,sql,schema/}
 *   ~/.cache/hitloop/temporal-ui-server/v2.56.4/server
 *
 * Run as a script (`node toolchain/temporalServer.ts`) it builds what is missing and prints the paths.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { findGo, hitloopCacheDir, isExecutableFile, readLockPid, runLogged, tryLock, waitForOtherBuild } from './temporalCli.ts';

/** The server version of the pinned CLI's dev server: the cluster and the dev server run the same code. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
/** v2.58.1 does not build from the module proxy (two of its dependencies are refused); v2.56.4 does. */
export const TEMPORAL_UI_SERVER_VERSION = 'v2.56.4';

const SERVER_MODULE = 'go.temporal.io/server';
const UI_SERVER_PACKAGE = 'github.com/temporalio/ui-server/v2/cmd/server';
/** Written last by a successful build: a directory without it holds a build that was cut short. */
const COMPLETE_MARKER = '.complete';

export interface TemporalServerBinaries {
  /** temporal-server: `server --config-file <file> start [--service <name>]...` */
  server: string;
  /** temporal-sql-tool */
  sqlTool: string;
  /** The server's `schema/` folder (postgresql/v12/temporal/versioned, .../visibility/versioned). */
  schemaDir: string;
  /** The Web UI server (`server --root <dir> --env <name> start`). */
  uiServer: string;
}

export interface EnsureOptions {
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Build the Web UI server too (default true). */
  ui?: boolean;
}

export function temporalServerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(hitloopCacheDir(env), 'temporal-server', TEMPORAL_SERVER_VERSION);
}

export function temporalUiServerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(hitloopCacheDir(env), 'temporal-ui-server', TEMPORAL_UI_SERVER_VERSION);
}

/** The cached binaries, building whatever is missing (minutes on two cores the first time). `uiServer` exists only if `ui` was not false. */
export async function ensureTemporalServerBinaries(opts: EnsureOptions = {}): Promise<TemporalServerBinaries> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const serverDir = temporalServerCacheDir(env);
  await ensureGoBuild({
    what: `Temporal server ${TEMPORAL_SERVER_VERSION}`,
    dir: serverDir,
    packages: [`${SERVER_MODULE}/cmd/server@${TEMPORAL_SERVER_VERSION}`, `${SERVER_MODULE}/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`],
    env,
    log,
    // The SQL tool reads its schema files from a folder: keep a copy beside it, out of the module cache.
    async afterBuild(go) {
      const { stdout } = await promisify(execFile)(go, ['env', 'GOMODCACHE'], { env });
      const source = path.join(stdout.trim(), `${SERVER_MODULE}@${TEMPORAL_SERVER_VERSION}`, 'schema');
      if (!fs.existsSync(source)) throw new Error(`the Go build left no schema folder at ${source}`);
      fs.cpSync(source, path.join(serverDir, 'schema'), { recursive: true });
      fs.chmodSync(path.join(serverDir, 'schema'), 0o755);
    },
  });
  const uiDir = temporalUiServerCacheDir(env);
  if (opts.ui !== false) await ensureGoBuild({
    what: `Temporal UI server ${TEMPORAL_UI_SERVER_VERSION}`,
    dir: uiDir,
    packages: [`${UI_SERVER_PACKAGE}@${TEMPORAL_UI_SERVER_VERSION}`],
    // Its go.mod asks for Go 1.26.10: `auto` lets the go command fetch that toolchain (it is a module
    // on the Go module proxy, golang.org/toolchain) when the installed Go is older.
    env: { ...env, GOTOOLCHAIN: env.HITLOOP_UI_GOTOOLCHAIN ?? 'auto' },
    log,
  });
  return {
    server: path.join(serverDir, 'server'),
    sqlTool: path.join(serverDir, 'sql'),
    schemaDir: path.join(serverDir, 'schema'),
    uiServer: path.join(uiDir, 'server'),
  };
}

interface GoBuild {
  what: string;
  /** GOBIN of the build; holds the lock file and the completion marker too. */
  dir: string;
  /** `module/path/cmd/x@version` arguments of one `go install`. */
  packages: string[];
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  afterBuild?: (go: string) => Promise<void>;
}

async function ensureGoBuild(build: GoBuild): Promise<void> {
  const marker = path.join(build.dir, COMPLETE_MARKER);
  if (fs.existsSync(marker)) {
    build.log(`${build.what}: cached in ${build.dir}`);
    return;
  }
  fs.mkdirSync(build.dir, { recursive: true });
  const lock = path.join(build.dir, '.build.lock');
  while (!tryLock(lock)) {
    build.log(`${build.what}: another process (pid ${readLockPid(lock)}) is building it into ${build.dir}; waiting`);
    await waitForOtherBuild(lock, build.dir);
    if (fs.existsSync(marker)) return;
  }
  try {
    const go = findGo(build.env);
    if (!go) {
      throw new Error(
        `${build.what} is not built yet (nothing in ${build.dir}) and Go is not installed to build it. ` +
          `Install Go 1.26 or newer (the build fetches ${build.packages.join(' ')} from the Go module proxy).`,
      );
    }
    const args = ['install', ...build.packages];
    const logFile = path.join(hitloopCacheDir(build.env), 'logs', 'temporal-server-build.log');
    build.log(`${build.what}: building with CGO_ENABLED=0 GOBIN=${build.dir} nice ${go} ${args.join(' ')} (minutes; log in ${logFile})`);
    const started = Date.now();
    // nice: the build shares the machine with whatever else runs (tests, other builds).
    const result = await runLogged('nice', ['-n', '19', go, ...args], { ...build.env, CGO_ENABLED: '0', GOBIN: build.dir }, logFile);
    if (result.code !== 0) {
      throw new Error(
        `Building ${build.what} failed (go ${args.join(' ')} exited with ${result.code}; full log in ${logFile}). ` +
          `Fix the Go toolchain (Go 1.26 or newer, the Go module proxy reachable) and run it again. Last output:\n${result.tail.join('\n')}`,
      );
    }
    await build.afterBuild?.(go);
    const missing = build.packages.map((p) => path.join(build.dir, path.basename(p.split('@')[0]!))).filter((f) => !isExecutableFile(f));
    if (missing.length > 0) throw new Error(`the Go build of ${build.what} succeeded but left no ${missing.join(', ')}; see ${logFile}`);
    fs.writeFileSync(marker, `${new Date().toISOString()} built in ${Math.round((Date.now() - started) / 1000)} s\n`);
    build.log(`${build.what}: built in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

if (import.meta.main) {
  try {
    const binaries = await ensureTemporalServerBinaries({ log: (line) => process.stderr.write(`${line}\n`) });
    process.stdout.write(`${JSON.stringify(binaries, null, 2)}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
