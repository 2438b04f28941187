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

/**
 * Dev-server settings hitloop relies on: many workers may register with one run at once, and each
 * registration is an update (Temporal's default allows 10 in flight per workflow); activities are
 * handed to the worker that scheduled them in its task's answer (eager execution), saving a poll
 * round trip on every registration. A shared server gets the same from
 * deploy/temporal/dynamicconfig.yaml (docker-compose.yml mounts it).
 */
export const devServerDynamicConfigArgs = (): string[] => [
  '--dynamic-config-value',
  'history.maxInFlightUpdates=500',
  '--dynamic-config-value',
  'system.enableActivityEagerExecution=true',
];
