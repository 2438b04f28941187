/**
 * The pure decisions behind gold units and the budget guard: when a worker's next unit is a gold
 * one, which gold item they get, when wrong answers disqualify, how many units a budget buys and
 * whether a payment (with its provider's fee) fits in what it leaves.
 */
import { describe, expect, it } from 'vitest';
import { goldsDue, nextUnitIsGold, pickGoldItem, tooManyWrongGolds } from '../qualifications/goldPlan.ts';
import { fitsBudget, paymentCost, type Budget } from '../review/budget.ts';
import { unitsWithinBudget } from '../workflows/runPlan.ts';

describe('gold plan', () => {
  const rule = { min_golds: 2, gold_every_units: 3 };

  it.each([
    // scored, inFlight, realDone -> next is gold
    [0, 0, 0, true],
    [1, 0, 0, true],
    [1, 1, 0, false],
    [2, 0, 0, false],
    [2, 0, 2, false],
    [2, 0, 3, true],
    [3, 0, 5, false],
    [3, 0, 6, true],
  ])('scored %i, in flight %i, real units done %i: next is gold = %s', (scored, inFlight, realDone, gold) => {
    expect(nextUnitIsGold(rule, { scored, inFlight, realDone })).toBe(gold);
  });

  it('without gold_every_units only the first golds are given', () => {
    expect(goldsDue({ min_golds: 1, gold_every_units: 0 }, 1000)).toBe(1);
    expect(nextUnitIsGold({ min_golds: 1, gold_every_units: 0 }, { scored: 1, inFlight: 0, realDone: 50 })).toBe(false);
  });

  it('gives each item once before repeating, then goes round', () => {
    expect(pickGoldItem(3, [])).toBe(0);
    expect(pickGoldItem(3, [0, 2])).toBe(1);
    expect(pickGoldItem(3, [0, 1, 2])).toBe(0);
    expect(pickGoldItem(3, [2, 0, 1])).toBe(2);
  });

  it('disqualifies only past max_incorrect_golds', () => {
    expect(tooManyWrongGolds(0, 0)).toBe(false);
    expect(tooManyWrongGolds(0, 1)).toBe(true);
    expect(tooManyWrongGolds(2, 2)).toBe(false);
    expect(tooManyWrongGolds(2, 3)).toBe(true);
  });
});

describe('budget guard', () => {
  it.each([
    // max_spend, spend, reward -> units that still fit
    [null, 100, 1, Number.POSITIVE_INFINITY],
    [10, 0, 0, Number.POSITIVE_INFINITY],
    [1.6, 0, 0.5, 3],
    [1.5, 0, 0.5, 3],
    [1.5, 1.5, 0.5, 0],
    [1.5, 2, 0.5, 0],
    [0.3, 0.1, 0.1, 2],
    [1, 0.7, 0.1, 3],
  ])('max_spend %s, spent %s, reward %s: %s more unit(s)', (max, spend, reward, fits) => {
    expect(unitsWithinBudget(max, spend, reward)).toBe(fits);
  });

  // A payment beyond the launched units (a bonus, a gold or screening unit) costs its provider's fee too.
  const budget = (left: number, feeRate: number): Budget => ({
    maxSpend: 10,
    spent: 10 - left,
    left,
    feeOn: (amount) => Math.round(amount * feeRate * 10_000) / 10_000,
  });
  it.each([
    // left, fee rate, amount -> cost, fits
    [0.6, 0, 0.5, 0.5, true],
    [0.6, 0, 0.6, 0.6, true],
    [0.6, 0, 0.6001, 0.6001, false],
    [0.6, 1 / 3, 0.5, 0.6667, false],
    [0.6, 1 / 3, 0.45, 0.6, true],
    [0.3, 0, 0.1 + 0.2, 0.3, true],
  ])('%s left, fee rate %s: paying %s costs %s, fits: %s', (left, rate, amount, cost, fits) => {
    expect(paymentCost(budget(left, rate), amount)).toBe(cost);
    expect(fitsBudget(budget(left, rate), amount)).toBe(fits);
  });
  it('without a budget everything fits', () => {
    expect(fitsBudget(null, 1e9)).toBe(true);
  });
});
