/**
 * Onboarding, screening and gold units (docs/design.md §3 and the scenarios of docs/design.md §7), end to end through
 * the TaskRun and assignment workflows on a real Temporal server, on SQLite and PostgreSQL. The
 * gateway's part (register, submit, disconnect) is played through the Temporal client, the same
 * updates and signals the gateway sends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, GrantedQualification, OnboardingAgent, ProviderCall, Qualification, Unit, Worker } from '../model/entities.ts';
import { createQualificationService, type QualificationService } from '../qualifications/service.ts';
import { formConfig } from './support/configs.ts';
import { submit } from './support/directAgents.ts';
import { disconnect, register, submitOnboarding, type Onboarding } from './support/qualifyingAgents.ts';
import { type Assigned, waitForUnitStatus } from './support/completeUnits.ts';
import { eventually, startStack, testLog, type Dialect, type Stack } from './support/stack.ts';

const FORM = { type: 'static-form', fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }] };

describe.each<Dialect>(['sqlite', 'postgresql'])('onboarding, screening and gold on %s', (dialect) => {
  let stack: Stack;
  let quals: QualificationService;
  beforeAll(async () => {
    stack = await startStack(dialect);
    quals = createQualificationService({ db: stack.db, settings: stack.settings, log: testLog });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const em = () => stack.db.em();
  let keys = 0;
  const key = (worker: string) => `${worker}-reg-${keys++}`;

  async function grantOf(worker: string, qualification: string): Promise<number | undefined> {
    const w = await em().findOne(Worker, { provider: 'mock', providerWorkerId: worker });
    const q = await em().findOne(Qualification, { name: qualification });
    if (!w || !q) return undefined;
    return (await em().findOne(GrantedQualification, { worker: w.id, qualification: q.id }))?.value;
  }

  /** Register until the run answers something other than "nothing launched yet". */
  async function ask(runId: string, worker: string, registrationKey = key(worker)) {
    return eventually(async () => {
      const r = await register(stack.env.client, runId, worker, registrationKey);
      return r.outcome === 'refused' && r.reason === 'no_units_available' && r.detail.includes('no unit of this run is free')
        ? undefined
        : r;
    }, `an answer for ${worker}`);
  }

  async function completeAs(unit: Assigned, data: Record<string, unknown>): Promise<void> {
    await submit(stack.env.client, unit.assignmentId, unit.agentId, data);
    await waitForUnitStatus(stack.db, unit.unitId, 'completed');
  }

  // ---------------------------------------------------------------------------------- onboarding

  describe('onboarding', () => {
    const onboardingConfig = (task: string) =>
      formConfig(
        {
          task_name: task,
          onboarding_qualification: `${task}-onboarded`,
          blueprint: { ...FORM, onboarding: { fields: [{ name: 'answer', type: 'text' }], expected: { answer: '42' } } },
        },
        4,
      );

    it('pass: onboarding first, then a real unit in the same exchange; the grant is 1 and told to the provider', async () => {
      const { runId } = await stack.operator.launch(onboardingConfig('ob-pass'));
      const registrationKey = key('ob-ann');
      const first = (await ask(runId, 'ob-ann', registrationKey)) as Onboarding;
      expect(first).toMatchObject({ outcome: 'onboarding', newlyStarted: true });
      // The worker sees the onboarding form, never its expected answers.
      expect(first.initData).toEqual({ onboarding: true, fields: [expect.objectContaining({ name: 'answer' })], instructions: null });
      // A retried register finds the same onboarding.
      expect(await register(stack.env.client, runId, 'ob-ann', registrationKey)).toMatchObject({
        outcome: 'onboarding',
        onboardingAgentId: first.onboardingAgentId,
        newlyStarted: false,
      });

      const passed = await submitOnboarding(stack.env.client, runId, {
        worker: 'ob-ann',
        registrationKey,
        onboardingAgentId: first.onboardingAgentId,
        data: { answer: '42' },
      });
      expect(passed).toMatchObject({ outcome: 'assigned', unitId: `${runId}-a0-u0`, newlyAssigned: true });
      expect(await grantOf('ob-ann', 'ob-pass-onboarded')).toBe(1);
      expect((await em().findOneOrFail(OnboardingAgent, first.onboardingAgentId)).status).toBe('passed');
      // Sent again (a gateway retry, another submit key): the same unit, nothing granted twice.
      const again = await submitOnboarding(stack.env.client, runId, {
        worker: 'ob-ann',
        registrationKey,
        onboardingAgentId: first.onboardingAgentId,
        data: { answer: 'changed my mind' },
        submitKey: 'another-key',
      });
      expect(again).toMatchObject({ outcome: 'assigned', agentId: (passed as Assigned).agentId, newlyAssigned: false });
      expect(await em().count(ProviderCall, { operation: 'grantQualification', target: 'ob-ann' })).toBe(1);
      await completeAs(passed as Assigned, { label: 'positive' });
      // Onboarded once: the next unit comes straight away.
      expect(await ask(runId, 'ob-ann')).toMatchObject({ outcome: 'assigned' });
      await stack.operator.shutdown(runId);
    });

    it('fail: refused now and on return, until an operator revokes the 0', async () => {
      const { runId } = await stack.operator.launch(onboardingConfig('ob-fail'));
      const registrationKey = key('ob-bob');
      const step = (await ask(runId, 'ob-bob', registrationKey)) as Onboarding;
      expect(step.outcome).toBe('onboarding');
      const failed = await submitOnboarding(stack.env.client, runId, {
        worker: 'ob-bob',
        registrationKey,
        onboardingAgentId: step.onboardingAgentId,
        data: { answer: '41' },
      });
      expect(failed).toMatchObject({ outcome: 'refused', reason: 'not_qualified', detail: expect.stringContaining('onboarding') });
      expect(await grantOf('ob-bob', 'ob-fail-onboarded')).toBe(0);
      expect(await ask(runId, 'ob-bob')).toMatchObject({ outcome: 'refused', reason: 'not_qualified' });
      expect(await em().count(Agent, { taskRun: runId })).toBe(0);

      await quals.revoke({ name: 'ob-fail-onboarded', provider: 'mock', providerWorkerId: 'ob-bob' });
      const retry = (await ask(runId, 'ob-bob')) as Onboarding;
      expect(retry).toMatchObject({ outcome: 'onboarding', newlyStarted: true });
      // Left unanswered, the onboarding ends with the run.
      await stack.operator.shutdown(runId);
      expect((await em().findOneOrFail(OnboardingAgent, retry.onboardingAgentId)).status).toBe('expired');
      expect((await em().findOneOrFail(OnboardingAgent, step.onboardingAgentId)).status).toBe('failed');
    });

    it('pre-granted 0 is refused without onboarding; pre-granted 1 skips it', async () => {
      await quals.create({ name: 'ob-pre-onboarded' });
      await quals.grant({ name: 'ob-pre-onboarded', provider: 'mock', providerWorkerId: 'ob-zero', value: 0 });
      await quals.grant({ name: 'ob-pre-onboarded', provider: 'mock', providerWorkerId: 'ob-one', value: 1 });
      const { runId } = await stack.operator.launch(onboardingConfig('ob-pre'));
      expect(await ask(runId, 'ob-zero')).toMatchObject({ outcome: 'refused', reason: 'not_qualified' });
      expect(await ask(runId, 'ob-one')).toMatchObject({ outcome: 'assigned' });
      expect(await em().count(OnboardingAgent, { taskRun: runId })).toBe(0);
      await stack.operator.shutdown(runId);
    });
  });

  // ----------------------------------------------------------------------------------- screening

  it('screening: a cap of 2, a slot freed by a disconnect; a failed screen blocks, a passed one leads to real units', async () => {
    const { runId } = await stack.operator.launch(
      formConfig(
        {
          task_name: 'screen-task',
          block_qualification: 'screen-blocked',
          reconnect_window_seconds: 1,
          blueprint: { ...FORM, screening: { expected: { label: 'positive' } } },
          screening: {
            enabled: true,
            max_screening_units: 2,
            passed_qualification: 'screen-passed',
            data: [{ text: 'is this positive?' }],
          },
        },
        3,
      ),
    );
    const a = (await ask(runId, 'scr-a')) as Assigned;
    const b = (await ask(runId, 'scr-b')) as Assigned;
    expect(a).toMatchObject({ outcome: 'assigned', unitKind: 'screening' });
    expect(b).toMatchObject({ outcome: 'assigned', unitKind: 'screening' });
    // Screening units look like any other unit and show the screening input.
    expect(a.unitId).toMatch(new RegExp(`^${runId}-a\\d+-u0$`));
    expect((await em().findOneOrFail(Agent, a.agentId)).initData).toMatchObject({ data: { text: 'is this positive?' } });
    // Both screening places are taken: the third worker waits.
    expect(await ask(runId, 'scr-c')).toMatchObject({
      outcome: 'refused',
      reason: 'no_units_available',
      detail: expect.stringContaining('screening'),
    });

    // b drops out; past the reconnect window its screening unit expires and its place is free.
    await disconnect(stack.env.client, b.assignmentId, b.agentId);
    await waitForUnitStatus(stack.db, b.unitId, 'expired');
    const c = (await ask(runId, 'scr-c')) as Assigned;
    expect(c).toMatchObject({ outcome: 'assigned', unitKind: 'screening' });

    await completeAs(a, { label: 'positive' });
    await completeAs(c, { label: 'negative' });
    expect(await grantOf('scr-a', 'screen-passed')).toBe(1);
    expect(await grantOf('scr-c', 'screen-blocked')).toBe(1);
    // The provider hears of the scores in a step after the grant (tellProviderOfScore): waited for, not raced.
    const told = await eventually(async () => {
      const n = await em().count(ProviderCall, { operation: 'grantQualification', target: { $in: ['scr-a', 'scr-c'] } });
      return n >= 2 ? n : undefined;
    }, 'the provider told of both screening scores');
    expect(told).toBe(2);

    // Failed: blocked from the task. Passed: real units, no more screening.
    expect(await ask(runId, 'scr-c')).toMatchObject({ outcome: 'refused', reason: 'blocked' });
    const real = (await ask(runId, 'scr-a')) as Assigned;
    expect(real).toMatchObject({ outcome: 'assigned' });
    expect(real.unitKind).toBeUndefined();
    expect(real.unitId).toBe(`${runId}-a0-u0`);
    await completeAs(real, { label: 'positive' });
    // The run finishes its real units; the screening units were extra units of the run.
    for (let i = 0; i < 2; i++) await completeAs((await ask(runId, 'scr-a')) as Assigned, { label: 'negative' });
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('completed');
    expect(final.units).toMatchObject({ completed: 5, expired: 1 });
    expect(await em().count(Unit, { taskRun: runId, kind: 'screening' })).toBe(3);
  });

  // ---------------------------------------------------------------------------------------- gold

  it('gold: mixed in per worker, counted as qualifications, disqualifying after too many wrong answers', async () => {
    const { runId } = await stack.operator.launch(
      formConfig(
        {
          task_name: 'gold-task',
          blueprint: FORM,
          gold: {
            enabled: true,
            data: [
              { input: { text: 'gold one' }, expected: { label: 'positive' } },
              { input: { text: 'gold two' }, expected: { label: 'negative' } },
            ],
            min_golds: 1,
            gold_every_units: 2,
            max_incorrect_golds: 1,
          },
        },
        8,
      ),
    );
    // A careful worker: a gold first, then two real units, then another gold.
    const kinds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const unit = (await ask(runId, 'gold-good')) as Assigned;
      kinds.push(unit.unitKind ?? 'normal');
      const shown = (await em().findOneOrFail(Agent, unit.agentId)).initData as { data: { text: string } };
      expect(JSON.stringify(shown)).not.toContain('expected');
      const answer = shown.data.text === 'gold one' ? 'positive' : 'negative';
      await completeAs(unit, { label: answer });
    }
    expect(kinds).toEqual(['gold', 'normal', 'normal', 'gold']);
    expect(await grantOf('gold-good', 'gold-task-correct-golds')).toBe(2);
    expect(await grantOf('gold-good', 'gold-task-incorrect-golds')).toBe(0);

    // A careless worker: wrong twice (more than max_incorrect_golds = 1) and disqualified.
    const first = (await ask(runId, 'gold-bad')) as Assigned;
    expect(first.unitKind).toBe('gold');
    await completeAs(first, { label: 'wrong' });
    expect(await grantOf('gold-bad', 'gold-task-incorrect-golds')).toBe(1);
    // One wrong answer is allowed (max_incorrect_golds = 1): two real units, then the next gold.
    const afterFirst: string[] = [];
    for (let i = 0; i < 3; i++) {
      const unit = (await ask(runId, 'gold-bad')) as Assigned;
      afterFirst.push(unit.unitKind ?? 'normal');
      await completeAs(unit, { label: 'wrong' });
    }
    expect(afterFirst).toEqual(['normal', 'normal', 'gold']);
    expect(await grantOf('gold-bad', 'gold-task-incorrect-golds')).toBe(2);
    expect(await ask(runId, 'gold-bad')).toMatchObject({
      outcome: 'refused',
      reason: 'not_qualified',
      detail: expect.stringContaining('wrong'),
    });
    // The provider heard of each count.
    expect(await em().count(ProviderCall, { operation: 'grantQualification', target: 'gold-bad' })).toBeGreaterThanOrEqual(2);
    await stack.operator.shutdown(runId);
  });
});
