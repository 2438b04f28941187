/**
 * What MTurk charges the requester on top of every reward and bonus: 20 %, or 40 % for HITs with 10
 * or more assignments. hitloop makes one HIT per unit (MaxAssignments 1), so its HITs pay 20 %.
 */
export const MTURK_FEE_RATE = 0.2;
export const MTURK_LARGE_HIT_FEE_RATE = 0.4;
export const MTURK_LARGE_HIT_ASSIGNMENTS = 10;

export function mturkFeeRate(maxAssignments: number): number {
  return maxAssignments >= MTURK_LARGE_HIT_ASSIGNMENTS ? MTURK_LARGE_HIT_FEE_RATE : MTURK_FEE_RATE;
}

/** MTurk's fee on a payment of `amount` dollars, in cents as MTurk rounds it. */
export function mturkFee(amount: number, maxAssignments = 1): number {
  return Math.round(amount * mturkFeeRate(maxAssignments) * 100) / 100;
}
