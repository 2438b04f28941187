/**
 * Custom search attributes of a TaskRun, as the Temporal Web UI and `hitloop runs` filter on them.
 * The dev server registers them at start (`--search-attribute Name=Keyword`).
 */
import { defineSearchAttributeKey } from '@temporalio/common';

export const TASK_NAME = defineSearchAttributeKey('HitloopTaskName', 'KEYWORD');
export const RUN_ID = defineSearchAttributeKey('HitloopRunId', 'KEYWORD');
export const RUN_STATUS = defineSearchAttributeKey('HitloopRunStatus', 'KEYWORD');

export const HITLOOP_SEARCH_ATTRIBUTES = [TASK_NAME, RUN_ID, RUN_STATUS] as const;

/** `Name=Keyword` arguments for `temporal server start-dev --search-attribute`. */
export const searchAttributeCliArgs = (): string[] =>
  HITLOOP_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]);
