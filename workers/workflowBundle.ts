/**
 * Workers run pre-bundled workflow code. The bundle is built once per version of what it contains
 * and cached, so a worker or a test starts in milliseconds and every process runs exactly the same
 * bundle.
 *
 * The cache key covers every file the bundler read (webpack's own list: the workflow sources, what
 * they import from anywhere in the repository, and the packages under node_modules), not a list kept
 * by hand. Beside each bundle `workflows-<key>.js` lies `workflows-<key>.json`, the entry and those
 * files; a bundle is reused while hashing its listed files still gives its key.
 *
 * The bundle includes the workflow tracing interceptors (workflows/tracing.ts): a worker given a
 * pre-built bundle ignores `interceptors.workflowModules`, so they must be built in. They send
 * workflow spans through the `exporter` sink every worker injects (observability/telemetry.ts).
 */
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BundleOptions, bundleWorkflowCode } from '@temporalio/worker';
import type { Compiler } from 'webpack';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WORKFLOWS_ENTRY = path.join(ROOT, 'workflows', 'index.ts');
/** Workflow interceptor modules built into the bundle (tracing, docs/design.md §6 production shape). */
export const WORKFLOW_INTERCEPTOR_MODULES: readonly string[] = [path.join(ROOT, 'workflows', 'tracing.ts')];
/** Loaded once per worker thread and shared by its workflow instances instead of once per instance (workflows/preload.ts). */
export const WORKFLOW_PRELOAD_MODULES: readonly string[] = [path.join(ROOT, 'workflows', 'preload.ts')];

export function defaultBundleDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '/tmp', '.cache');
  return path.join(cache, 'hitloop', 'workflow-bundles');
}

/** What a cached bundle was built from: its entry and every file the bundler read for it. */
interface BundleManifest {
  entry: string;
  files: string[];
}

export interface WorkflowBundle {
  codePath: string;
  /** The cache key: a hash of the bundler's identity, the entry and the contents of `files`. */
  key: string;
  /** Absolute paths of every file the bundle was built from, sorted. */
  files: string[];
}

/**
 * The bundler itself shapes the output: its package versions and this file (which sets its options)
 * are part of every key.
 */
async function bundlerIdentity(): Promise<string> {
  const require = createRequire(import.meta.url);
  const fromWorker = createRequire(require.resolve('@temporalio/worker'));
  const versions = ['@temporalio/worker/package.json', 'webpack/package.json', '@swc/core/package.json'].map(
    (pkg) => `${pkg}@${(fromWorker(pkg) as { version: string }).version}`,
  );
  return [...versions, await readFile(fileURLToPath(import.meta.url), 'utf8')].join('\n');
}

/** Hashes file contents, each file once however many manifests list it. */
function contentHasher(): (file: string) => Promise<string> {
  const seen = new Map<string, Promise<string>>();
  return (file) => {
    let digest = seen.get(file);
    if (digest === undefined) {
      digest = readFile(file).then(
        (bytes) => createHash('sha256').update(bytes).digest('hex'),
        // A file gone since the build (a package removed): no longer the bundle's sources.
        () => 'absent',
      );
      seen.set(file, digest);
    }
    return digest;
  };
}

async function bundleKey(manifest: BundleManifest, identity: string, contentHash: (file: string) => Promise<string>): Promise<string> {
  const hash = createHash('sha256').update(identity).update('\0').update(manifest.entry);
  for (const file of manifest.files) hash.update('\0').update(file).update('\0').update(await contentHash(file));
  return hash.digest('hex').slice(0, 16);
}

/** The newest cached bundle of `entry` whose files still hash to its key, if any. */
export async function findCachedBundle(entry = WORKFLOWS_ENTRY, dir = defaultBundleDir()): Promise<WorkflowBundle | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => /^workflows-[0-9a-f]{16}\.json$/.test(name));
  } catch {
    return undefined; // no cache yet
  }
  const candidates = await Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name);
      try {
        const manifest = JSON.parse(await readFile(file, 'utf8')) as BundleManifest;
        return { key: name.slice('workflows-'.length, -'.json'.length), manifest, mtime: (await stat(file)).mtimeMs };
      } catch {
        return undefined; // removed meanwhile, or not ours to read
      }
    }),
  );
  const identity = await bundlerIdentity();
  const contentHash = contentHasher();
  const ours = candidates
    .filter((c): c is NonNullable<typeof c> => c !== undefined && c.manifest.entry === entry)
    .sort((a, b) => b.mtime - a.mtime);
  for (const { key, manifest } of ours) {
    if ((await bundleKey(manifest, identity, contentHash)) !== key) continue;
    const codePath = path.join(dir, `workflows-${key}.js`);
    try {
      await access(codePath);
      return { codePath, key, files: manifest.files };
    } catch {
      // the manifest outlived its bundle: build again
    }
  }
  return undefined;
}

/** Collects every real file webpack read while bundling (not the bundler's in-memory entry point). */
function recordFilesRead(files: Set<string>): BundleOptions['webpackConfigHook'] {
  return (config) => ({
    ...config,
    plugins: [
      ...(config.plugins ?? []),
      {
        apply(compiler: Compiler) {
          compiler.hooks.afterCompile.tap('hitloop-record-files-read', (compilation) => {
            for (const file of compilation.fileDependencies) files.add(file);
          });
        },
      },
    ],
  });
}

const isFile = async (file: string): Promise<boolean> => (await stat(file).catch(() => undefined))?.isFile() ?? false;

/**
 * The files read that exist on disk, with the package.json nearest to each: its `main`, `exports`
 * and `type` decide what the bundler reads, and webpack does not list it for every package.
 */
async function sourcesOnDisk(read: Iterable<string>): Promise<string[]> {
  const files = new Set<string>();
  const manifestOfDir = new Map<string, Promise<string | undefined>>();
  const nearestPackageJson = (dir: string): Promise<string | undefined> => {
    let found = manifestOfDir.get(dir);
    if (found === undefined) {
      const candidate = path.join(dir, 'package.json');
      const parent = path.dirname(dir);
      found = isFile(candidate).then((yes) => (yes ? candidate : parent === dir ? undefined : nearestPackageJson(parent)));
      manifestOfDir.set(dir, found);
    }
    return found;
  };
  for (const file of read) {
    if (!(await isFile(file))) continue;
    files.add(file);
    const packageJson = await nearestPackageJson(path.dirname(file));
    if (packageJson !== undefined) files.add(packageJson);
  }
  return [...files].sort();
}

/** Writes aside then renames: a concurrent reader never sees half a file. */
async function writeWhole(file: string, content: string): Promise<void> {
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, content);
  await rename(partial, file);
}

/** The path of an up-to-date bundle, building it when missing. */
export async function ensureWorkflowBundle(dir = defaultBundleDir(), entry = WORKFLOWS_ENTRY): Promise<WorkflowBundle> {
  const cached = await findCachedBundle(entry, dir);
  if (cached !== undefined) return cached;

  const startedAt = Date.now();
  const read = new Set<string>();
  const { code } = await bundleWorkflowCode({
    workflowsPath: entry,
    workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES],
    preloadModules: [...WORKFLOW_PRELOAD_MODULES],
    logger: quietLogger,
    webpackConfigHook: recordFilesRead(read),
  });
  const manifest: BundleManifest = { entry, files: await sourcesOnDisk(read) };
  const key = await bundleKey(manifest, await bundlerIdentity(), contentHasher());
  await mkdir(dir, { recursive: true });
  // A source edited while the bundle was built: the bundle may hold either version, so this process
  // uses it from a file of its own, never under the key of the new contents (another's bundle).
  const mtimes = await Promise.all(manifest.files.map(async (file) => (await stat(file).catch(() => undefined))?.mtimeMs ?? Infinity));
  if (mtimes.some((mtime) => mtime > startedAt)) {
    const codePath = path.join(dir, `unsettled-${key}-${process.pid}-${startedAt}.js`);
    await writeWhole(codePath, code);
    return { codePath, key, files: manifest.files };
  }
  const codePath = path.join(dir, `workflows-${key}.js`);
  await writeWhole(codePath, code);
  await writeWhole(path.join(dir, `workflows-${key}.json`), JSON.stringify(manifest));
  return { codePath, key, files: manifest.files };
}

const noop = (): void => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

if (import.meta.url === `file://${process.argv[1]}`) {
  const { codePath } = await ensureWorkflowBundle(process.argv[2]);
  console.log(codePath);
}
