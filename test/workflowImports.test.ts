/**
 * hitloop/workflow-imports, run through ESLint with the project's own eslint.config.js: workflow files
 * load only @temporalio/workflow, other workflow files and the listed pure modules; anything else for
 * its types only. The real workflows/ folder passes.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RULE = 'hitloop/workflow-imports';

// Only this rule, without type information: the fixtures are strings, not files of the TypeScript project.
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  ruleFilter: ({ ruleId }) => ruleId === RULE,
});

async function problems(code: string, file = 'workflows/fixture.ts'): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  expect(result!.messages.filter((m) => m.ruleId !== RULE)).toEqual([]); // e.g. a parse error
  return result!.messages.map((m) => m.message);
}

describe('hitloop/workflow-imports', () => {
  it.each([
    ["import { Client } from '@temporalio/client';", '@temporalio/client'],
    ["import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';", '@temporalio/common'],
    ["import { readFile } from 'node:fs/promises';", 'node:fs/promises'],
    ["import { createAssignments } from '../activities/taskRunActivities.ts';", '../activities/taskRunActivities.ts'],
    ["import { type TaskRunActivities, createAssignments } from '../activities/taskRunActivities.ts';", '../activities/taskRunActivities.ts'],
    ["import {} from '../activities/taskRunActivities.ts';", '../activities/taskRunActivities.ts'],
    ["import '../observability/tracing.ts';", '../observability/tracing.ts'],
    ["export { loadTaskRunConfig } from '../config/taskRunConfig.ts';", '../config/taskRunConfig.ts'],
    ["export * from '../config/taskRunConfig.ts';", '../config/taskRunConfig.ts'],
    ["export async function f() { return import('../activities/outbox.ts'); }", '../activities/outbox.ts'],
    ["import { UNIT_STATUSES } from '../model/entities.ts';", '../model/entities.ts'],
  ])('refuses %s', async (code, specifier) => {
    const found = await problems(code);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(`may not load '${specifier}' at run time`);
    expect(found[0]).toContain('eslint.config.js');
  });

  it.each([
    "import { sleep } from '@temporalio/workflow';",
    "import { requestUnitUpdate } from './definitions.ts';",
    "import type { TaskRunActivities } from '../activities/taskRunActivities.ts';",
    "import { type TaskRunActivities } from '../activities/taskRunActivities.ts';",
    "export type { TaskRunActivities } from '../activities/taskRunActivities.ts';",
    "import type { Client } from '@temporalio/client';",
    "import { z } from 'zod';",
    "import { UNIT_STATUSES } from '../model/status.ts';",
    "import { storableString } from '../model/storableJson.ts';",
  ])('allows %s', async (code) => {
    expect(await problems(code)).toEqual([]);
  });

  it('applies to workflow files only', async () => {
    expect(await problems("import { Client } from '@temporalio/client';", 'activities/fixture.ts')).toEqual([]);
  });

  it('passes on the real workflows/ folder', async () => {
    const results = await eslint.lintFiles(['workflows/']);
    expect(results.length).toBeGreaterThanOrEqual(8);
    expect(results.flatMap((r) => r.messages.map((m) => `${path.relative(ROOT, r.filePath)}:${m.line} ${m.message}`))).toEqual([]);
  });
});
