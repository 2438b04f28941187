/**
 * What the gateway needs to know of a task run, read once from the database and kept: the run's
 * config is frozen at launch, so its provider, blueprint, compiled submission schema and task page
 * never change. Only runs that exist are cached; a run id not (yet) recorded is looked up again.
 */
import type { z } from 'zod';
import { storableJsonObject } from '../model/storableJson.ts';
import type { Blueprint, TaskPageInfo } from '../blueprints/types.ts';
import { componentOptions, type ComponentSpec, type TaskRunConfig } from '../config/taskRunConfig.ts';
import type { Database } from '../model/database.ts';
import { TaskRun } from '../model/entities.ts';
import type { CrowdProvider } from '../providers/types.ts';
import { blueprints, providers } from '../registry/builtins.ts';

export interface RunInfo {
  runId: string;
  provider: CrowdProvider;
  blueprint: Blueprint;
  blueprintOptions: Record<string, unknown>;
  submissionSchema: z.ZodType;
  /** What onboarding answers must look like (any JSON object when the blueprint does not say). */
  onboardingSchema: z.ZodType;
  /** The task page, rendered on first request. */
  taskPageHtml(): string;
}

/** Runs kept in memory; the oldest is dropped beyond this. */
const MAX_CACHED_RUNS = 1_000;

export class RunCatalog {
  readonly #db: Database;
  readonly #runs = new Map<string, RunInfo>();
  readonly #loading = new Map<string, Promise<RunInfo | null>>();

  constructor(db: Database) {
    this.#db = db;
  }

  /** The run's info, or null when the database has no such run. */
  async get(runId: string): Promise<RunInfo | null> {
    const cached = this.#runs.get(runId);
    if (cached) return cached;
    let loading = this.#loading.get(runId);
    if (!loading) {
      loading = this.#load(runId).finally(() => this.#loading.delete(runId));
      this.#loading.set(runId, loading);
    }
    return loading;
  }

  async #load(runId: string): Promise<RunInfo | null> {
    const run = await this.#db.em().findOne(TaskRun, runId, { fields: ['config', 'providerType', 'blueprintType'] });
    if (!run) return null;
    const config = run.config as { provider?: ComponentSpec; blueprint?: ComponentSpec } & Partial<TaskRunConfig>;
    const provider = providers.get(run.providerType);
    const blueprint = blueprints.get(run.blueprintType);
    const blueprintOptions = config.blueprint ? componentOptions(config.blueprint) : {};
    let html: string | undefined;
    const info: RunInfo = {
      runId,
      provider,
      blueprint,
      blueprintOptions,
      submissionSchema: blueprint.submissionSchema(blueprintOptions),
      onboardingSchema: onboardingSchemaOf(blueprint, blueprintOptions),
      taskPageHtml: () => (html ??= blueprint.taskPage({ options: blueprintOptions, runId, task: taskPageInfo(config) }).html),
    };
    if (this.#runs.size >= MAX_CACHED_RUNS) {
      const oldest = this.#runs.keys().next().value;
      if (oldest !== undefined) this.#runs.delete(oldest);
    }
    this.#runs.set(runId, info);
    return info;
  }
}

/** The run's title, description, reward and time per unit, for the task page's header. */
function taskPageInfo(config: Partial<TaskRunConfig>): TaskPageInfo {
  return {
    title: config.task_title ?? config.task_name ?? 'Task',
    ...(config.task_description ? { description: config.task_description } : {}),
    ...(config.task_reward !== undefined ? { reward: config.task_reward } : {}),
    ...(config.assignment_duration_seconds ? { assignmentDurationSeconds: config.assignment_duration_seconds } : {}),
  };
}

/**
 * Onboarding answers are checked like the form they answer: a blueprint whose options carry
 * `onboarding.fields` (static-form) validates them with its submission schema over those fields.
 * Otherwise any object passes here and the blueprint's onboarding validator alone decides.
 */
function onboardingSchemaOf(blueprint: Blueprint, options: Record<string, unknown>): z.ZodType {
  const onboarding = options.onboarding as { fields?: unknown } | undefined;
  if (onboarding && Array.isArray(onboarding.fields)) return blueprint.submissionSchema({ fields: onboarding.fields });
  return storableJsonObject();
}
