/**
 * When a worker's next unit is a gold unit (docs/design.md §3: known answers mixed in per worker). Pure.
 *
 * A worker does `min_golds` golds before any real unit, then one more after every
 * `gold_every_units` real units (0: no more). Golds in flight count as given, so a worker allowed
 * several units at once is not handed a stack of golds.
 */
export interface GoldHistory {
  /** Golds already scored for this worker in this task (correct + incorrect). */
  scored: number;
  /** Gold units the worker holds now, not yet submitted. */
  inFlight: number;
  /** Real (normal) units the worker has submitted in this task. */
  realDone: number;
}

export interface GoldRule {
  min_golds: number;
  gold_every_units: number;
}

/** Golds a worker should have been given, having done `realDone` real units. */
export function goldsDue(rule: GoldRule, realDone: number): number {
  return rule.min_golds + (rule.gold_every_units > 0 ? Math.floor(realDone / rule.gold_every_units) : 0);
}

export function nextUnitIsGold(rule: GoldRule, history: GoldHistory): boolean {
  return history.scored + history.inFlight < goldsDue(rule, history.realDone);
}

/** Disqualified: more wrong golds than `max_incorrect_golds` allows. */
export function tooManyWrongGolds(maxIncorrect: number, incorrect: number): boolean {
  return incorrect > maxIncorrect;
}

/**
 * Which gold item to give: the first the worker has not been given in this run, else (all seen)
 * the one after the last given, round robin.
 */
export function pickGoldItem(itemCount: number, alreadyGiven: readonly number[]): number {
  const given = new Set(alreadyGiven);
  for (let i = 0; i < itemCount; i++) if (!given.has(i)) return i;
  const last = alreadyGiven.at(-1) ?? -1;
  return (last + 1) % itemCount;
}
