/**
 * Review and payment (docs/design.md §4) on SQLite and PostgreSQL, against a real Temporal server: approve,
 * reject and soft-reject reach the right unit and agent statuses and the provider; a bonus is paid
 * once per request key; bad inputs are refused clearly and change nothing; bulk review; spend with
 * bonuses; the `max_spend` budget guard; and `hitloop review` on the command line.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../cli/exitCodes.ts';
import { Agent, Bonus, ProviderCall, Review, TaskRun, Unit } from '../model/entities.ts';
import { createReviewer, type Reviewer } from '../review/operator.ts';
import { reviewWorkflowId } from '../review/requests.ts';
import { formConfig } from './support/configs.ts';
import { completeUnit, takeUnit } from './support/completeUnits.ts';
import { requestUnit } from './support/directAgents.ts';
import { eventually, startStack, type Dialect, type Stack } from './support/stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const execFileAsync = promisify(execFile);

describe.each<Dialect>(['sqlite', 'postgresql'])('review and payment on %s', (dialect) => {
  let stack: Stack;
  let reviewer: Reviewer;
  beforeAll(async () => {
    stack = await startStack(dialect);
    reviewer = createReviewer({ client: stack.env.client, db: stack.db, settings: stack.settings });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const em = () => stack.db.em();
  const statuses = async (unitId: string) => {
    const unit = await em().findOneOrFail(Unit, unitId);
    const agent = await em().findOneOrFail(Agent, { unit: unitId, status: { $nin: ['disconnect', 'timeout', 'returned', 'expired'] } });
    return { unit: unit.status, agent: agent.status };
  };
  const calls = (operation: string, where: Record<string, unknown> = {}) => em().find(ProviderCall, { operation, ...where });

  it('approve, reject and soft-reject reach the right unit and agent statuses and the provider', async () => {
    const { runId } = await stack.operator.launch(formConfig({}, 4));
    const c = stack.env.client;
    const a = await completeUnit(c, stack.db, runId, 'rev-ann', { label: 'positive' });
    const b = await completeUnit(c, stack.db, runId, 'rev-bob', { label: 'negative' });
    const s = await completeUnit(c, stack.db, runId, 'rev-cat', { label: 'negative' });

    const listed = await reviewer.list(runId);
    expect(listed.map((u) => u.unitId).sort()).toEqual([a.unitId, b.unitId, s.unitId].sort());
    expect(listed.find((u) => u.unitId === a.unitId)).toMatchObject({
      data: { label: 'positive' },
      providerWorkerId: 'rev-ann',
      review: null,
    });

    const [approved] = await reviewer.review(runId, { decision: 'approve', unitIds: [a.unitId], note: 'good' });
    expect(approved).toMatchObject({ unitStatus: 'accepted', agentStatus: 'approved', repeated: false, requestKey: `approve-${a.unitId}` });
    await reviewer.review(runId, { decision: 'reject', unitIds: [b.unitId], note: 'wrong label' });
    await reviewer.review(runId, { decision: 'soft_reject', unitIds: [s.unitId] });

    expect(await statuses(a.unitId)).toEqual({ unit: 'accepted', agent: 'approved' });
    expect(await statuses(b.unitId)).toEqual({ unit: 'rejected', agent: 'rejected' });
    expect(await statuses(s.unitId)).toEqual({ unit: 'soft_rejected', agent: 'soft_rejected' });
    // Soft-rejected work is paid: approved at the provider, recorded as poor here.
    expect((await calls('approveWork', { target: { $in: [a.unitId, s.unitId] } })).map((x) => x.target).sort()).toEqual(
      [a.unitId, s.unitId].sort(),
    );
    expect((await calls('rejectWork', { target: b.unitId }))[0]?.payload).toMatchObject({ workerId: 'rev-bob', note: 'wrong label' });
    expect((await em().findOneOrFail(Review, { unit: a.unitId })).note).toBe('good');
    // The reviews show in Temporal, one workflow per request.
    const described = await stack.env.client.workflow.getHandle(reviewWorkflowId(`approve-${a.unitId}`)).describe();
    expect(described.status.name).toBe('COMPLETED');

    // The same command again is the same request: nothing is done twice.
    const [repeat] = await reviewer.review(runId, { decision: 'approve', unitIds: [a.unitId] });
    expect(repeat).toMatchObject({ repeated: true, unitStatus: 'accepted' });
    expect(await calls('approveWork', { target: a.unitId })).toHaveLength(1);
    expect(await em().count(Review, { unit: a.unitId })).toBe(1);
    // Another decision on a reviewed unit is refused and changes nothing.
    await expect(reviewer.review(runId, { decision: 'reject', unitIds: [a.unitId] })).rejects.toThrow(
      /already reviewed \(accepted.*nothing was changed/,
    );
    expect(await statuses(a.unitId)).toEqual({ unit: 'accepted', agent: 'approved' });
    expect(await reviewer.list(runId)).toEqual([]);
    expect(await reviewer.list(runId, { includeReviewed: true })).toHaveLength(3);
    await stack.operator.shutdown(runId);
  });

  it('refuses to review a unit not completed, with a clear message, changing nothing', async () => {
    const { runId } = await stack.operator.launch(formConfig({}, 2));
    const held = await takeUnit(stack.env.client, runId, 'not-done');
    await eventually(async () => ((await statuses(held.unitId)).agent === 'in_task' ? true : undefined), 'the agent to start');
    await expect(reviewer.review(runId, { decision: 'approve', unitIds: [held.unitId] })).rejects.toThrow(
      new RegExp(`unit ${held.unitId} is assigned, not completed: only submitted work can be reviewed; nothing was changed`),
    );
    await expect(reviewer.bonus(runId, { unitId: held.unitId, amount: 1, reason: 'early' })).rejects.toThrow(/is assigned, not completed/);
    await expect(reviewer.review(runId, { decision: 'approve', unitIds: [`${runId}-a99-u0`] })).rejects.toThrow(/is not a unit of run/);
    await expect(reviewer.review(runId, { decision: 'approve', all: true })).rejects.toThrow(/no completed units awaiting review/);
    expect(await statuses(held.unitId)).toEqual({ unit: 'assigned', agent: 'in_task' });
    expect(await em().count(Review, { unit: held.unitId })).toBe(0);
    expect(await calls('approveWork', { target: held.unitId })).toHaveLength(0);
    await stack.operator.shutdown(runId);
  });

  it('pays a bonus once per request key, refuses bad amounts, and counts bonuses in the spend', async () => {
    const { runId } = await stack.operator.launch(formConfig({ task_reward: 0.5 }, 3));
    const c = stack.env.client;
    const done = await completeUnit(c, stack.db, runId, 'bonus-worker', { label: 'positive' });
    const before = await stack.operator.status(runId);
    // Three units launched at 0.5: payable while launched, assigned or completed.
    expect(before.spend).toBe(1.5);

    for (const [amount, message] of [
      [-1, /greater than 0/],
      [0, /greater than 0/],
      ['abc', /must be a number such as 0.50/],
      ['1.5.2', /must be a number/],
      [Number.NaN, /must be a number/],
      [0.123456, /at most 4 decimal places/],
    ] as const) {
      await expect(
        reviewer.bonus(runId, { unitId: done.unitId, amount, reason: 'great work' }),
        `amount ${String(amount)}`,
      ).rejects.toThrow(message);
    }
    await expect(reviewer.bonus(runId, { unitId: done.unitId, amount: 1, reason: '  ' })).rejects.toThrow(/needs a reason/);
    expect(await em().count(Bonus, { unit: done.unitId })).toBe(0);
    expect(await calls('payBonus', { target: 'bonus-worker' })).toHaveLength(0);

    const first = await reviewer.bonus(runId, { unitId: done.unitId, amount: '0.25', reason: 'great work', requestKey: 'bonus-key-1' });
    expect(first).toMatchObject({ kind: 'bonus', amount: 0.25, repeated: false, providerRef: 'mock-bonus-bonus-key-1' });
    const second = await reviewer.bonus(runId, { unitId: done.unitId, amount: 0.25, reason: 'great work', requestKey: 'bonus-key-1' });
    expect(second).toMatchObject({ repeated: true, amount: 0.25 });
    expect(await calls('payBonus', { requestKey: 'bonus-key-1' })).toHaveLength(1);
    expect(await em().count(Bonus, { requestKey: 'bonus-key-1', status: 'paid' })).toBe(1);
    // The key names one operation: another amount under it is refused.
    await expect(
      reviewer.bonus(runId, { unitId: done.unitId, amount: 5, reason: 'great work', requestKey: 'bonus-key-1' }),
    ).rejects.toThrow(/already used for another operation/);

    // Without a key, the same command twice derives the same key: paid once.
    await reviewer.bonus(runId, { unitId: done.unitId, amount: 1, reason: 'extra' });
    const again = await reviewer.bonus(runId, { unitId: done.unitId, amount: 1, reason: 'extra' });
    expect(again.repeated).toBe(true);
    expect(await calls('payBonus', { target: 'bonus-worker' })).toHaveLength(2);

    const after = await stack.operator.status(runId);
    expect(after.spend).toBe(1.5 + 0.25 + 1);
    // A rejected unit is not payable; its bonus, once paid, still counts.
    await reviewer.review(runId, { decision: 'reject', unitIds: [done.unitId] });
    expect((await stack.operator.status(runId)).spend).toBe(1 + 0.25 + 1);
    await stack.operator.shutdown(runId);
  });

  it('reviews in bulk: every unit of one worker, then all the rest', async () => {
    const { runId } = await stack.operator.launch(formConfig({}, 5));
    const c = stack.env.client;
    const units = [];
    for (const worker of ['bulk-a', 'bulk-b', 'bulk-a', 'bulk-c'])
      units.push(await completeUnit(c, stack.db, runId, worker, { label: 'positive' }));
    const ofA = await reviewer.review(runId, { decision: 'soft_reject', worker: 'bulk-a' });
    expect(ofA.map((r) => r.unitId).sort()).toEqual([units[0]!.unitId, units[2]!.unitId].sort());
    const rest = await reviewer.review(runId, { decision: 'approve', all: true, requestKey: 'approve-batch-1' });
    expect(rest.map((r) => r.unitId).sort()).toEqual([units[1]!.unitId, units[3]!.unitId].sort());
    expect(rest.map((r) => r.requestKey).sort()).toEqual(
      [`approve-batch-1:${units[1]!.unitId}`, `approve-batch-1:${units[3]!.unitId}`].sort(),
    );
    const reviewed = await em().find(Unit, { id: { $in: units.map((u) => u.unitId) } });
    expect(Object.fromEntries(reviewed.map((u) => [u.id, u.status]))).toEqual({
      [units[0]!.unitId]: 'soft_rejected',
      [units[1]!.unitId]: 'accepted',
      [units[2]!.unitId]: 'soft_rejected',
      [units[3]!.unitId]: 'accepted',
    });
    await stack.operator.shutdown(runId);
  });

  it('stops launching before the spend would pass max_spend, then ends the run', async () => {
    // 1.6 buys three units at 0.5; the fourth would pass it.
    const { runId } = await stack.operator.launch(formConfig({ task_reward: 0.5, max_spend: 1.6 }, 6));
    const c = stack.env.client;
    for (const worker of ['budget-a', 'budget-b', 'budget-c']) await completeUnit(c, stack.db, runId, worker, { label: 'positive' });
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final).toMatchObject({ status: 'completed', endReason: 'max_spend', spend: 1.5 });
    expect(final.units).toMatchObject({ completed: 3, expired: 3, launched: 0 });
    expect(await calls('launchUnit', { target: { $like: `${runId}-%` } })).toHaveLength(3);
  });

  it('bonuses count against max_spend: past what is left refused unless over budget; max_spend raised live launches again', async () => {
    // 1.6 buys three units at 0.5 (spend 1.5 once launched): 0.1 is left.
    const { runId } = await stack.operator.launch(formConfig({ task_reward: 0.5, max_spend: 1.6 }, 6));
    const unit = await completeUnit(stack.env.client, stack.db, runId, 'budget-bonus', { label: 'positive' });
    await eventually(async () => ((await calls('launchUnit', { target: { $like: `${runId}-%` } })).length === 3 ? true : undefined), 'three launches');

    await expect(reviewer.bonus(runId, { unitId: unit.unitId, amount: '0.5', reason: 'great' })).rejects.toThrow(
      /a bonus of 0.5 is more than run .*max_spend leaves \(0.1 of 1.6\); nothing was paid.*--over-budget/,
    );
    expect(await em().count(Bonus, { unit: unit.unitId, status: 'paid' })).toBe(0);
    expect(await calls('payBonus', { target: 'budget-bonus' })).toHaveLength(0);
    // Within what is left: paid.
    await reviewer.bonus(runId, { unitId: unit.unitId, amount: '0.1', reason: 'fits' });
    // Past it, on purpose.
    const over = await reviewer.bonus(runId, { unitId: unit.unitId, amount: '0.5', reason: 'great', overBudget: true });
    expect(over).toMatchObject({ kind: 'bonus', amount: 0.5 });
    expect((await stack.operator.status(runId)).spend).toBe(2.1);

    // Raised live: the run, stopped by its budget, launches the units left (3 more at 0.5 fit in 3.9).
    const limits = await stack.operator.changeLimits(runId, { max_spend: 6 });
    expect(limits.max_spend).toBe(6);
    await eventually(
      async () => ((await calls('launchUnit', { target: { $like: `${runId}-%` } })).length === 6 ? true : undefined),
      'the units left to be launched once max_spend was raised',
    );
    // And bonuses see the new budget too.
    await reviewer.bonus(runId, { unitId: unit.unitId, amount: '1', reason: 'now it fits' });
    await expect(stack.operator.changeLimits(runId, { max_spend: -1 })).rejects.toThrow(/max_spend: -1 is not allowed: must be a number > 0/);
    // `hitloop set <runId> max_spend=1e-7`: the database would store it as 0.
    await expect(stack.operator.changeLimits(runId, { max_spend: 1e-7 })).rejects.toThrow(
      /max_spend: 1e-7 is not allowed: must be a number > 0 with at most 4 decimal places: amounts are stored to 0.0001, the smallest is 0.0001/,
    );
    expect(await em().findOneOrFail(TaskRun, runId, { fields: ['maxSpend'] })).toMatchObject({ maxSpend: 6 });
    await stack.operator.shutdown(runId);
   }, 300_000);

  it('a gold unit past the budget is not made: the worker gets a real unit and the spend stays within max_spend', async () => {
    const { runId } = await stack.operator.launch(
      formConfig(
        {
          task_reward: 0.5,
          max_spend: 1,
          max_num_concurrent_units: 2,
          gold: { enabled: true, data: [{ input: { text: 'gold' }, expected: { label: 'positive' } }], min_golds: 1, gold_every_units: 2 },
        },
        4,
      ),
    );
    // Two units launched use the whole budget.
    await eventually(async () => ((await calls('launchUnit', { target: { $like: `${runId}-%` } })).length === 2 ? true : undefined), 'two launches');
    const got = await eventually(async () => {
      const r = await requestUnit(stack.env.client, runId, `gold-budget-${dialect}`);
      return r.outcome === 'refused' && r.reason === 'no_units_available' ? undefined : r;
    }, 'a unit');
    expect(got).toMatchObject({ outcome: 'assigned' });
    expect((got as { unitKind?: string }).unitKind ?? 'normal').toBe('normal');
    expect(await em().count(Unit, { taskRun: runId, kind: 'gold' })).toBe(0);
    expect((await stack.operator.status(runId)).spend).toBeLessThanOrEqual(1);
    await stack.operator.shutdown(runId);
   }, 300_000);

  it.runIf(dialect === 'sqlite')('works from the command line: list, approve --all, bonus, bad amounts', async () => {
    const { runId } = await stack.operator.launch(formConfig({}, 2));
    const unit = await completeUnit(stack.env.client, stack.db, runId, 'cli-reviewee', { label: 'negative' });
    const env = {
      ...process.env,
      HITLOOP_DATABASE_URL: stack.settings.databaseUrl,
      TEMPORAL_ADDRESS: stack.env.address,
      HITLOOP_TASK_QUEUE: stack.settings.taskQueue,
      HITLOOP_LOG_LEVEL: 'warn',
    };
    const hitloop = async (...args: string[]) => {
      try {
        const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(ROOT, 'cli', 'main.ts'), ...args], { env, cwd: ROOT });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const listed = JSON.parse((await hitloop('review', runId, '--json')).stdout) as Array<{ unitId: string; data: unknown }>;
    expect(listed).toEqual([expect.objectContaining({ unitId: unit.unitId, data: { label: 'negative' } })]);
    expect((await hitloop('review', runId)).stdout).toMatch(/1 unit\(s\) awaiting review/);

    for (const amount of ['-2', '0', 'ten']) {
      const refused = await hitloop('review', 'bonus', runId, unit.unitId, '--amount', amount, '--reason', 'thanks');
      expect(refused.code, `amount ${amount}`).toBe(EXIT_CODES.usage);
      expect(refused.stderr).toMatch(/hitloop: a bonus amount must be/);
    }
    expect(await em().count(Bonus, { unit: unit.unitId })).toBe(0);
    const paid = await hitloop('review', 'bonus', runId, unit.unitId, '--amount', '0.75', '--reason', 'thanks');
    expect(paid.stdout).toMatch(/bonus 0.75 paid on/);
    const repaid = await hitloop('review', 'bonus', runId, unit.unitId, '--amount', '0.75', '--reason', 'thanks');
    expect(repaid.stdout).toMatch(/already done by this request/);
    expect(await calls('payBonus', { target: 'cli-reviewee' })).toHaveLength(1);

    expect((await hitloop('review', 'approve', runId, '--all')).stdout).toMatch(new RegExp(`${unit.unitId}: accepted`));
    const notDone = await hitloop('review', 'reject', runId, unit.unitId);
    expect(notDone.code).toBe(1);
    expect(notDone.stderr).toMatch(/already reviewed/);
    await stack.operator.shutdown(runId);
  });
});
