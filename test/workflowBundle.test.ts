/**
 * The workflow bundle's cache key covers every file the bundle is built from, wherever it lies:
 * a workflow file, a helper outside workflows/, a package under node_modules (and its package.json).
 * Editing any of them makes the cached bundle stale; editing a file the bundle does not contain does not.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWorkflowBundle, findCachedBundle } from '../workers/workflowBundle.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A small workflow tree; it lies inside the repository so that `@temporalio/workflow` resolves. */
const FIXTURE: Record<string, string> = {
  'workflows/index.ts': `import { helper } from './helper.ts';\nexport async function FixtureWorkflow(): Promise<string> {\n  return helper();\n}\n`,
  'workflows/helper.ts': `import { shout } from '../lib/pure.ts';\nimport { greet } from 'fake-dep';\nexport const helper = (): string => shout(greet('bundle'));\n`,
  'workflows/unused.ts': `export const unused = 1;\n`,
  'lib/pure.ts': `export const shout = (s: string): string => s.toUpperCase();\n`,
  'node_modules/fake-dep/package.json': `{ "name": "fake-dep", "version": "1.0.0", "main": "index.js" }\n`,
  'node_modules/fake-dep/index.js': `exports.greet = (name) => 'hello ' + name;\n`,
};
const IMPORTED = Object.keys(FIXTURE).filter((file) => file !== 'workflows/unused.ts');

/** An edit that keeps the file valid (JSON has no comments). */
const edited = (file: string, content: string): string =>
  file.endsWith('.json') ? content.replace('"1.0.0"', '"1.0.1"') : `${content}// edited\n`;

describe('workflow bundle cache key', () => {
  let fixtureDir: string;
  let cacheDir: string;
  let entry: string;
  let firstKey: string;

  beforeAll(async () => {
    await mkdir(path.join(ROOT, '.data'), { recursive: true });
    fixtureDir = await mkdtemp(path.join(ROOT, '.data', 'bundle-fixture-'));
    cacheDir = path.join(fixtureDir, 'cache');
    for (const [file, content] of Object.entries(FIXTURE)) {
      await mkdir(path.dirname(path.join(fixtureDir, file)), { recursive: true });
      await writeFile(path.join(fixtureDir, file), content);
    }
    entry = path.join(fixtureDir, 'workflows', 'index.ts');
  });
  afterAll(async () => {
    if (fixtureDir !== undefined) await rm(fixtureDir, { recursive: true, force: true });
  });

  it('lists every file the bundler read, and a second call reuses the bundle', async () => {
    const built = await ensureWorkflowBundle(cacheDir, entry);
    firstKey = built.key;
    for (const file of IMPORTED) expect(built.files).toContain(path.join(fixtureDir, file));
    expect(built.files).not.toContain(path.join(fixtureDir, 'workflows/unused.ts'));
    expect(built.files.some((file) => file.includes('/node_modules/@temporalio/workflow/'))).toBe(true);
    expect(await readFile(built.codePath, 'utf8')).toContain('toUpperCase');

    const again = await ensureWorkflowBundle(cacheDir, entry);
    expect(again).toEqual(built);
  }, 300_000);

  it.each(IMPORTED)('editing %s makes the cached bundle stale; undoing the edit finds it again', async (file) => {
    const where = path.join(fixtureDir, file);
    const original = FIXTURE[file]!;
    await writeFile(where, edited(file, original));
    try {
      expect(await findCachedBundle(entry, cacheDir)).toBeUndefined();
    } finally {
      await writeFile(where, original);
    }
    expect((await findCachedBundle(entry, cacheDir))?.key).toBe(firstKey);
  });

  it('editing a file the bundle does not contain keeps the cached bundle', async () => {
    await writeFile(path.join(fixtureDir, 'workflows/unused.ts'), `export const unused = 2;\n`);
    expect((await findCachedBundle(entry, cacheDir))?.key).toBe(firstKey);
  });

  it('after an edit, the next bundle holds the edit under a new key', async () => {
    await writeFile(path.join(fixtureDir, 'lib/pure.ts'), `export const shout = (s: string): string => s.toLowerCase();\n`);
    const rebuilt = await ensureWorkflowBundle(cacheDir, entry);
    expect(rebuilt.key).not.toBe(firstKey);
    expect(await readFile(rebuilt.codePath, 'utf8')).toContain('toLowerCase');
    expect((await findCachedBundle(entry, cacheDir))?.key).toBe(rebuilt.key);
  }, 300_000);
});
