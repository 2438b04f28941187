/**
 * Custom search attributes of a TaskRun, as the Temporal Web UI and `hitloop runs` filter on them.
 * The dev server registers them at start (`--search-attribute Name=Keyword`).
 */
import type { defineSearchAttributeKey } from '@temporalio/common';

type KeywordKey = ReturnType<typeof defineSearchAttributeKey<'KEYWORD'>>;
// The object @temporalio/common's defineSearchAttributeKey makes, written out: workflow code loads
// only @temporalio/workflow at run time (hitloop/workflow-imports in eslint.config.js).
const keyword = (name: string): KeywordKey => ({ name, type: 'KEYWORD' });

export const TASK_NAME = keyword('HitloopTaskName');
export const RUN_ID = keyword('HitloopRunId');
export const RUN_STATUS = keyword('HitloopRunStatus');

export const HITLOOP_SEARCH_ATTRIBUTES = [TASK_NAME, RUN_ID, RUN_STATUS] as const;

/** `Name=Keyword` arguments for `temporal server start-dev --search-attribute`. */
export const searchAttributeCliArgs = (): string[] =>
  HITLOOP_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]);
