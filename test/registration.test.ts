/**
 * The registration rules (registration/decision.ts and ids.ts) as plain functions: every rule and
 * its place in the documented order (docs/design.md §3), without a database or Temporal.
 */
import { describe, expect, it } from 'vitest';
import '../registry/builtins.ts';
import { validateRunConfig } from '../config/validateRun.ts';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import {
  answerForEarlierAgent,
  chooseUnitKind,
  decideEligibility,
  type EarlierAgent,
  type QualifyingStanding,
  type WorkerStanding,
} from '../registration/decision.ts';
import { agentIdFor, onboardingAgentIdFor } from '../registration/ids.ts';
import type { RunLimits } from '../workflows/definitions.ts';
import { formConfig } from './support/configs.ts';

const config = (overrides: Record<string, unknown> = {}): TaskRunConfig => validateRunConfig(formConfig({ task_name: 'reg', ...overrides }));
const limits = (overrides: Partial<RunLimits> = {}): RunLimits => ({
  max_num_concurrent_units: 0,
  allowed_concurrent: 0,
  maximum_units_per_worker: 0,
  task_reward: 0.5,
  task_lifetime_seconds: 3600,
  ...overrides,
});
const standing = (overrides: Partial<WorkerStanding> = {}): WorkerStanding => ({
  blocked: false,
  grants: new Map(),
  holdingInRun: 0,
  doneInTask: 0,
  ...overrides,
});

/** Every rule fails at once: the first in the documented order decides. */
const everythingWrong = (): { config: TaskRunConfig; limits: RunLimits; standing: WorkerStanding } => ({
  config: config({
    block_qualification: 'reg-blocked',
    qualifications: [{ name: 'english', comparator: 'GreaterThanOrEqualTo', value: 3 }],
    onboarding_qualification: 'reg-onboarded',
    blueprint: {
      type: 'static-form',
      fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }],
      onboarding: { fields: [{ name: 'q', type: 'text' }], expected: { q: 'x' } },
    },
  }),
  limits: limits({ allowed_concurrent: 1, maximum_units_per_worker: 2 }),
  standing: standing({ blocked: true, grants: new Map([['reg-blocked', 1], ['english', 1], ['reg-onboarded', 0]]), holdingInRun: 1, doneInTask: 2 }),
});

describe('eligibility, in the documented order', () => {
  it('an eligible worker with no limits set', () => {
    expect(decideEligibility(config(), limits(), standing())).toEqual({ outcome: 'eligible' });
  });

  it('blocked at the provider comes first, then the block qualification', () => {
    const w = everythingWrong();
    expect(decideEligibility(w.config, w.limits, w.standing)).toMatchObject({ outcome: 'refused', reason: 'blocked', detail: expect.stringContaining('provider') });
    w.standing = { ...w.standing, blocked: false };
    expect(decideEligibility(w.config, w.limits, w.standing)).toMatchObject({ reason: 'blocked', detail: 'you are blocked from this task' });
  });

  it('then the requirements, naming the unmet one', () => {
    const w = everythingWrong();
    const grants = new Map(w.standing.grants);
    grants.delete('reg-blocked');
    expect(decideEligibility(w.config, w.limits, { ...w.standing, blocked: false, grants })).toEqual({
      outcome: 'refused',
      reason: 'not_qualified',
      detail: 'this task requires english GreaterThanOrEqualTo 3',
    });
  });

  it('then onboarding: failed (0) refuses, absent asks for onboarding, passed goes on', () => {
    const w = everythingWrong();
    const base = { ...w.standing, blocked: false, holdingInRun: 0, doneInTask: 0 };
    const grants = (onboarded?: number) => new Map([['english', 3], ...(onboarded === undefined ? [] : [['reg-onboarded', onboarded] as [string, number]])]);
    expect(decideEligibility(w.config, w.limits, { ...base, grants: grants(0) })).toMatchObject({ reason: 'not_qualified', detail: expect.stringContaining('onboarding') });
    expect(decideEligibility(w.config, w.limits, { ...base, grants: grants() })).toEqual({ outcome: 'needs_onboarding' });
    expect(decideEligibility(w.config, w.limits, { ...base, grants: grants(1) })).toEqual({ outcome: 'eligible' });
  });

  it('then allowed_concurrent, then maximum_units_per_worker; 0 means no cap', () => {
    const c = config();
    const both = limits({ allowed_concurrent: 1, maximum_units_per_worker: 2 });
    expect(decideEligibility(c, both, standing({ holdingInRun: 1, doneInTask: 2 }))).toMatchObject({ reason: 'too_many_concurrent' });
    expect(decideEligibility(c, both, standing({ holdingInRun: 0, doneInTask: 2 }))).toMatchObject({ reason: 'max_for_task' });
    expect(decideEligibility(c, both, standing({ holdingInRun: 0, doneInTask: 1 }))).toEqual({ outcome: 'eligible' });
    expect(decideEligibility(c, limits(), standing({ holdingInRun: 50, doneInTask: 50 }))).toEqual({ outcome: 'eligible' });
  });

  it('too many wrong golds disqualifies before onboarding is looked at', () => {
    const c = config({ gold: { enabled: true, data: [{ input: { text: 'g' }, expected: { label: 'positive' } }], max_incorrect_golds: 1 } });
    expect(decideEligibility(c, limits(), standing({ grants: new Map([['reg-incorrect-golds', 2]]) }))).toMatchObject({ reason: 'not_qualified', detail: expect.stringContaining('check units') });
    expect(decideEligibility(c, limits(), standing({ grants: new Map([['reg-incorrect-golds', 1]]) }))).toEqual({ outcome: 'eligible' });
  });
});

const qualifying = (overrides: Partial<QualifyingStanding> = {}): QualifyingStanding => ({
  grants: new Map(),
  screeningHeld: 0,
  screeningAssignedInRun: 0,
  goldHeld: 0,
  realSubmittedInTask: 0,
  budgetFitsOneMore: true,
  ...overrides,
});

describe('which unit: screening, then gold, then the normal unit', () => {
  const screening = config({ screening: { enabled: true, max_screening_units: 2, passed_qualification: 'reg-screened' }, block_qualification: 'reg-blocked' });
  const gold = config({ gold: { enabled: true, data: [{ input: { text: 'g' }, expected: { label: 'positive' } }], min_golds: 1, gold_every_units: 2 } });

  it('without screening or gold, the normal unit', () => {
    expect(chooseUnitKind(config(), qualifying())).toEqual({ kind: 'normal' });
  });

  it('screening until passed: one held at a time, the run-wide cap, the budget', () => {
    expect(chooseUnitKind(screening, qualifying())).toEqual({ kind: 'screening' });
    expect(chooseUnitKind(screening, qualifying({ screeningHeld: 1 }))).toMatchObject({ reason: 'too_many_concurrent' });
    expect(chooseUnitKind(screening, qualifying({ screeningAssignedInRun: 2 }))).toMatchObject({ reason: 'no_units_available', detail: expect.stringContaining('screening place') });
    expect(chooseUnitKind(screening, qualifying({ budgetFitsOneMore: false }))).toMatchObject({ reason: 'no_units_available', detail: expect.stringContaining('budget') });
    expect(chooseUnitKind(screening, qualifying({ grants: new Map([['reg-screened', 1]]), screeningAssignedInRun: 2 }))).toEqual({ kind: 'normal' });
  });

  it('gold: min_golds first, then one after every gold_every_units real units; in flight counts as given', () => {
    expect(chooseUnitKind(gold, qualifying())).toEqual({ kind: 'gold' });
    expect(chooseUnitKind(gold, qualifying({ goldHeld: 1 }))).toEqual({ kind: 'normal' });
    const scoredOne = new Map([['reg-correct-golds', 1]]);
    expect(chooseUnitKind(gold, qualifying({ grants: scoredOne, realSubmittedInTask: 1 }))).toEqual({ kind: 'normal' });
    expect(chooseUnitKind(gold, qualifying({ grants: scoredOne, realSubmittedInTask: 2 }))).toEqual({ kind: 'gold' });
  });

  it('a gold unit past the budget gives way to the normal unit (a screening unit refuses)', () => {
    expect(chooseUnitKind(gold, qualifying({ budgetFitsOneMore: false }))).toEqual({ kind: 'normal' });
  });
});

describe('a registration seen before', () => {
  const earlier = (overrides: Partial<EarlierAgent> = {}): EarlierAgent => ({
    id: 'ag-1',
    status: 'in_task',
    unitId: 'u-1',
    assignmentId: 'a-1',
    unitKind: 'normal',
    madeByThisRun: false,
    ...overrides,
  });

  it('gets the same agent again, not as new (the gateway answers resumed: true)', () => {
    expect(answerForEarlierAgent(earlier(), 'w-1')).toEqual({
      outcome: 'assigned',
      agentId: 'ag-1',
      unitId: 'u-1',
      assignmentId: 'a-1',
      workerId: 'w-1',
      newlyAssigned: false,
    });
  });

  it('an agent this decision made before a crash is still new (the run hands it to its assignment)', () => {
    expect(answerForEarlierAgent(earlier({ madeByThisRun: true, unitKind: 'gold', status: 'accepted' }), 'w-1')).toMatchObject({
      newlyAssigned: true,
      unitKind: 'gold',
    });
  });

  it('an ended registration is not reopened', () => {
    for (const status of ['completed', 'returned', 'expired', 'disconnect'] as const) {
      expect(answerForEarlierAgent(earlier({ status }), 'w-1')).toMatchObject({ outcome: 'refused', reason: 'no_units_available', detail: expect.stringContaining(status) });
    }
  });
});

describe('ids derived from the registration', () => {
  it('the same (run, worker, key) names the same agent; any part changed, another', () => {
    const id = agentIdFor('r-1', 'w-1', 'key');
    expect(agentIdFor('r-1', 'w-1', 'key')).toBe(id);
    expect(new Set([id, agentIdFor('r-2', 'w-1', 'key'), agentIdFor('r-1', 'w-2', 'key'), agentIdFor('r-1', 'w-1', 'key2')]).size).toBe(4);
    // A separator keeps the parts apart: ("r-1", "w-1\0x") is not ("r-1\0w-1", "x").
    expect(agentIdFor('ab', 'c', 'k')).not.toBe(agentIdFor('a', 'bc', 'k'));
  });

  it('an agent and an onboarding attempt of one registration have distinct ids', () => {
    expect(agentIdFor('r', 'w', 'k')).not.toBe(onboardingAgentIdFor('r', 'w', 'k'));
    expect(onboardingAgentIdFor('r', 'w', 'k', 1)).toBe(`${onboardingAgentIdFor('r', 'w', 'k')}-1`);
  });
});
