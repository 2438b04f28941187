/**
 * The `max_spend` check of a bonus and its record are one step (issue 15): two bonuses that each
 * fit in what the budget leaves but not together, paid at the same moment from two connections,
 * end with exactly one paid and the other refused, round after round, on each database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bonus, TaskRun } from '../model/entities.ts';
import { runBudget } from '../review/budget.ts';
import { ReviewRefusedError, payBonus } from '../review/store.ts';
import { formConfig } from './support/configs.ts';
import { completeUnit } from './support/completeUnits.ts';
import { startStack, testLog, type Dialect, type Stack } from './support/stack.ts';

const ROUNDS = 8;

describe.each<Dialect>(['sqlite', 'postgresql'])('two bonuses racing for one budget on %s', (dialect) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(dialect);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('exactly one of two concurrent bonuses that together exceed max_spend is recorded and paid', async () => {
    const { runId } = await stack.operator.launch(formConfig({ task_reward: 0.5, max_spend: 100 }, 1));
    const unit = await completeUnit(stack.env.client, stack.db, runId, `race-${dialect}`, { label: 'positive' });
    const bonus = (round: number, which: string) => {
      const em = stack.db.em();
      return payBonus(
        em,
        { em, settings: stack.settings, log: testLog },
        { kind: 'bonus', unitId: unit.unitId, amount: 0.4, reason: `round ${round}`, requestKey: `race-${round}-${which}` },
      );
    };
    for (let round = 0; round < ROUNDS; round++) {
      // 0.6 left: room for one bonus of 0.4, not two.
      const spent = (await runBudget(stack.db.em(), runId))!.spent;
      await stack.db.em().nativeUpdate(TaskRun, { id: runId }, { maxSpend: Math.round((spent + 0.6) * 10_000) / 10_000 });
      const outcomes = await Promise.allSettled([bonus(round, 'a'), bonus(round, 'b')]);
      const paid = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
      expect(paid, `round ${round}`).toHaveLength(1);
      expect(refused, `round ${round}`).toHaveLength(1);
      expect(refused[0]).toBeInstanceOf(ReviewRefusedError);
      expect(String(refused[0])).toMatch(/is more than run .* max_spend leaves/);
      expect(await stack.db.em().count(Bonus, { requestKey: { $in: [`race-${round}-a`, `race-${round}-b`] } })).toBe(1);
    }
    const budget = (await runBudget(stack.db.em(), runId))!;
    expect(budget.spent).toBeLessThanOrEqual(budget.maxSpend);
    await stack.operator.shutdown(runId);
  }, 300_000);
});
