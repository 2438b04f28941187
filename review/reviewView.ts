/**
 * A submitted unit as the operator reviews it: the run's blueprint's review renderer
 * (`Blueprint.reviewView`) over the item the worker was shown and the answers they submitted.
 */
import type { ReviewBlock } from '../blueprints/types.ts';
import { componentOptions, type TaskRunConfig } from '../config/taskRunConfig.ts';
import { blueprints } from '../registry/builtins.ts';
import type { SubmittedUnit } from './units.ts';

/** What the task page showed: a screening or gold unit's assignment keeps it under `input`. */
function shownItem(unit: Pick<SubmittedUnit, 'unitKind' | 'assignmentData'>): unknown {
  const data = unit.assignmentData as { input?: unknown } | null;
  return unit.unitKind === 'gold' && data && typeof data === 'object' && 'input' in data ? data.input : unit.assignmentData;
}

/** A function giving each unit's review blocks, or null for every unit when the blueprint has no review renderer. */
export function reviewRenderer(config: Pick<TaskRunConfig, 'blueprint'> | null): (unit: SubmittedUnit) => ReviewBlock[] | null {
  const type = config?.blueprint?.type;
  const blueprint = type && blueprints.has(type) ? blueprints.get(type) : null;
  if (!blueprint?.reviewView || !config) return () => null;
  const options = componentOptions(config.blueprint);
  return (unit) => blueprint.reviewView!({ options, itemData: shownItem(unit), submission: unit.data });
}
