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

/**
 * One block of the operator's review of a submitted unit (a blueprint's `reviewView`): data, not
 * HTML, so the console renders every value as text. `part` says whether it is the item (as the
 * task page showed it) or the worker's answer.
 */
export type ReviewBlock = { part: 'item' | 'answer'; field: string; label: string; help?: string } & (
  | { type: 'image' | 'audio' | 'video' | 'link'; url: string | null }
  | { type: 'text'; value: string | null }
  | { type: 'number'; value: number | null; min?: number; max?: number }
  | { type: 'checkbox'; checked: boolean }
  | { type: 'choice'; options: string[]; chosen: string[]; multiple: boolean }
);

/** Where a unit stands among the worker's units of the run: "item `index` of up to `upTo`" (registration/position.ts). */
export interface UnitPosition {
  index: number;
  upTo: number;
}

export interface Blueprint {
  /** The name a run config uses (`blueprint: { type: static-form, ... }`). */
  readonly type: string;
  /** Schema of the blueprint's options in a run config. */
  readonly optionsSchema: z.ZodType;
  /** What the task page receives for one unit: built from the assignment's data. */
  initData(args: { assignmentData: Record<string, unknown>; unitIndex: number; options: unknown; position?: UnitPosition }): unknown;
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
  /** The review renderer: a submitted unit's item and answers as the operator's review page shows them. */
  reviewView?(args: { options: unknown; itemData: unknown; submission: unknown }): ReviewBlock[];
  /** Names of the fields a submission holds, when the options fix them (checked by `aggregate.fields`). */
  submissionFields?(options: unknown): string[] | undefined;
}
