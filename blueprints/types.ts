/**
 * A blueprint: what the work is (docs/design.md §5): `static-form`, `live-chat`, `remote-procedure`.
 * It supplies the task page, each unit's init data, the schema of a submission and the validators
 * for onboarding, screening and gold. Everything here is pure (no I/O), so activities may call it
 * freely and repeat calls on retry.
 *
 * `options` is always the run config's blueprint options (every key beside `type`), already
 * validated and defaulted by `optionsSchema` when the run was launched.
 */
import type { z } from 'zod';

export interface ValidationResult {
  passed: boolean;
  /** Why not, for the operator (and the worker, where the blueprint chooses to show it). */
  reason?: string;
}

/** What a task page says about its run, from the run's config (docs/design.md §2). */
export interface TaskPageInfo {
  title: string;
  description?: string;
  /** Pay per unit, in the provider's currency. */
  reward?: number;
  /** Time a worker has for one unit. */
  assignmentDurationSeconds?: number;
}

export interface BlueprintValidators {
  /** Decides an onboarding submission: pass grants the onboarding qualification = 1, fail = 0. */
  onboarding?(submission: unknown, options: unknown): ValidationResult;
  /** Decides a screening submission: pass grants the screening qualification, fail the block qualification. */
  screening?(submission: unknown, options: unknown): ValidationResult;
  /** Whether a gold submission matches the known answer (`expected` from the gold item). */
  gold?(submission: unknown, expected: unknown, options: unknown): boolean;
}

export interface Blueprint {
  /** The name a run config uses (`blueprint: { type: static-form, ... }`). */
  readonly type: string;
  /** Schema of the blueprint's options in a run config. */
  readonly optionsSchema: z.ZodType;
  /** What the task page receives for one unit: built from the assignment's data. */
  initData(args: { assignmentData: Record<string, unknown>; unitIndex: number; options: unknown }): unknown;
  /** Validates what a worker submits, before it reaches the workflow. */
  submissionSchema(options: unknown): z.ZodType;
  /** The HTML of the task page served to workers of a run. */
  taskPage(args: { options: unknown; runId: string; task?: TaskPageInfo }): { html: string };
  validators?: BlueprintValidators;
  /**
   * Whether a unit's agents work together (`group`: `units_per_assignment` agents wait for each
   * other) or alone (`independent`: `overlap` gives an item several units, each worked alone).
   * Absent = independent.
   */
  readonly collaboration?: 'group' | 'independent';
  /** Names of the fields a submission holds, when the options fix them (checked by `aggregate.fields`). */
  submissionFields?(options: unknown): string[] | undefined;
}
