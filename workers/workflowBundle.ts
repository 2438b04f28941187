/**
 * Workers run pre-bundled workflow code. The bundle is built once per version of the workflow
 * sources (a hash of them names the file) and cached, so a worker or a test starts in milliseconds
 * and every process runs exactly the same bundle.
 *
 * The bundle includes the workflow tracing interceptors (workflows/tracing.ts): a worker given a
 * pre-built bundle ignores `interceptors.workflowModules`, so they must be built in. They send
 * workflow spans through the `exporter` sink every worker injects (observability/telemetry.ts).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WORKFLOWS_ENTRY = path.join(ROOT, 'workflows', 'index.ts');
/** Workflow interceptor modules built into the bundle (tracing, docs/design.md §6 production shape). */
export const WORKFLOW_INTERCEPTOR_MODULES: readonly string[] = [path.join(ROOT, 'workflows', 'tracing.ts')];

/** Everything the workflow bundle is built from. */
async function sourceFiles(): Promise<string[]> {
  const dir = path.join(ROOT, 'workflows');
  const own = (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
  return [...own.sort(), path.join(ROOT, 'model', 'status.ts'), path.join(ROOT, 'package-lock.json')];
}

export async function workflowSourceHash(): Promise<string> {
  const hash = createHash('sha256');
  // The interceptor modules change the bundle without changing a source file.
  hash.update(WORKFLOW_INTERCEPTOR_MODULES.map((m) => path.relative(ROOT, m)).join('\n'));
  for (const file of await sourceFiles()) hash.update(file).update(await readFile(file));
  return hash.digest('hex').slice(0, 16);
}

export function defaultBundleDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '/tmp', '.cache');
  return path.join(cache, 'hitloop', 'workflow-bundles');
}

/** The path of an up-to-date bundle, building it when missing. */
export async function ensureWorkflowBundle(dir = defaultBundleDir()): Promise<{ codePath: string }> {
  const codePath = path.join(dir, `workflows-${await workflowSourceHash()}.js`);
  try {
    await access(codePath);
    return { codePath };
  } catch {
    // not built yet
  }
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_ENTRY,
    workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES],
    logger: quietLogger,
  });
  await mkdir(dir, { recursive: true });
  // Written aside then renamed: a concurrent reader never sees half a bundle.
  const partial = `${codePath}.${process.pid}.partial`;
  await writeFile(partial, code);
  await rename(partial, codePath);
  return { codePath };
}

const noop = (): void => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

if (import.meta.url === `file://${process.argv[1]}`) {
  const { codePath } = await ensureWorkflowBundle(process.argv[2]);
  console.log(codePath);
}
