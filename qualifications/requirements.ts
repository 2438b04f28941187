/**
 * Qualification requirements (docs/design.md §3), exactly: `Exists` fails without a grant; `DoesNotExist` fails
 * with one; every other comparator fails without a grant, else compares the granted value.
 */
import type { QualificationRequirement } from '../config/taskRunConfig.ts';

/** A worker's grants: qualification name -> granted value. */
export type Grants = ReadonlyMap<string, number>;

export function meetsRequirement(requirement: QualificationRequirement, grants: Grants): boolean {
  const granted = grants.get(requirement.name);
  switch (requirement.comparator) {
    case 'Exists':
      return granted !== undefined;
    case 'DoesNotExist':
      return granted === undefined;
  }
  if (granted === undefined) return false;
  switch (requirement.comparator) {
    case 'EqualTo':
      return granted === requirement.value;
    case 'NotEqualTo':
      return granted !== requirement.value;
    case 'GreaterThan':
      return granted > requirement.value;
    case 'GreaterThanOrEqualTo':
      return granted >= requirement.value;
    case 'LessThan':
      return granted < requirement.value;
    case 'LessThanOrEqualTo':
      return granted <= requirement.value;
    case 'In':
      return requirement.value.includes(granted);
    case 'NotIn':
      return !requirement.value.includes(granted);
  }
}

/** The first requirement the worker fails, or undefined when all hold. */
export function firstUnmetRequirement(
  requirements: readonly QualificationRequirement[],
  grants: Grants,
): QualificationRequirement | undefined {
  return requirements.find((r) => !meetsRequirement(r, grants));
}

export function describeRequirement(r: QualificationRequirement): string {
  return 'value' in r ? `${r.name} ${r.comparator} ${JSON.stringify(r.value)}` : `${r.name} ${r.comparator}`;
}
