/**
 * Every status of docs/design.md §1 and the transitions allowed between them, in one place.
 * Workflows, activities and the data model all ask this module before moving a row.
 * Pure and deterministic: safe to import from workflow code.
 */

export const UNIT_STATUSES = [
  'created',
  'launched',
  'assigned',
  'completed',
  'accepted',
  'rejected',
  'soft_rejected',
  'expired',
] as const;
export type UnitStatus = (typeof UNIT_STATUSES)[number];

export const AGENT_STATUSES = [
  'none',
  'accepted',
  'onboarding',
  'waiting',
  'in_task',
  'completed',
  'approved',
  'rejected',
  'soft_rejected',
  'disconnect',
  'timeout',
  'returned',
  'expired',
  'partner_disconnect',
] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

export const TASK_RUN_STATUSES = ['launching', 'running', 'draining', 'completed', 'cancelled', 'failed'] as const;
export type TaskRunStatus = (typeof TASK_RUN_STATUSES)[number];

/** Onboarding agents only ever onboard: they pass, fail, or drop out. */
export const ONBOARDING_AGENT_STATUSES = ['onboarding', 'passed', 'failed', 'disconnect', 'timeout', 'expired'] as const;
export type OnboardingAgentStatus = (typeof ONBOARDING_AGENT_STATUSES)[number];

type Transitions<S extends string> = Readonly<Record<S, readonly S[]>>;

const UNIT_TRANSITIONS: Transitions<UnitStatus> = {
  created: ['launched', 'expired'],
  launched: ['assigned', 'expired'],
  // Back to `launched` when the agent disconnects, times out or returns the unit before submitting.
  assigned: ['completed', 'launched', 'expired'],
  // A completed unit is never expired: the worker did the work.
  completed: ['accepted', 'rejected', 'soft_rejected'],
  accepted: [],
  rejected: [],
  soft_rejected: [],
  expired: [],
};

const AGENT_ABNORMAL_ENDS = ['disconnect', 'timeout', 'returned', 'expired', 'partner_disconnect'] as const;

const AGENT_TRANSITIONS: Transitions<AgentStatus> = {
  none: ['accepted', ...AGENT_ABNORMAL_ENDS],
  accepted: ['onboarding', 'waiting', 'in_task', ...AGENT_ABNORMAL_ENDS],
  onboarding: ['waiting', 'in_task', ...AGENT_ABNORMAL_ENDS],
  waiting: ['in_task', ...AGENT_ABNORMAL_ENDS],
  in_task: ['completed', ...AGENT_ABNORMAL_ENDS],
  completed: ['approved', 'rejected', 'soft_rejected'],
  approved: [],
  rejected: [],
  soft_rejected: [],
  disconnect: [],
  timeout: [],
  returned: [],
  expired: [],
  partner_disconnect: [],
};

const TASK_RUN_TRANSITIONS: Transitions<TaskRunStatus> = {
  launching: ['running', 'draining', 'completed', 'cancelled', 'failed'],
  running: ['draining', 'completed', 'cancelled', 'failed'],
  draining: ['completed', 'cancelled', 'failed'],
  completed: [],
  cancelled: [],
  failed: [],
};

const ONBOARDING_AGENT_TRANSITIONS: Transitions<OnboardingAgentStatus> = {
  onboarding: ['passed', 'failed', 'disconnect', 'timeout', 'expired'],
  passed: [],
  failed: [],
  disconnect: [],
  timeout: [],
  expired: [],
};

const MACHINES = {
  unit: UNIT_TRANSITIONS,
  agent: AGENT_TRANSITIONS,
  task_run: TASK_RUN_TRANSITIONS,
  onboarding_agent: ONBOARDING_AGENT_TRANSITIONS,
} as const;

export type StatusMachine = keyof typeof MACHINES;
type StatusOf<M extends StatusMachine> = keyof (typeof MACHINES)[M] & string;

export class IllegalTransitionError extends Error {
  readonly machine: StatusMachine;
  readonly from: string;
  readonly to: string;
  constructor(machine: StatusMachine, from: string, to: string) {
    const allowed = (MACHINES[machine] as Transitions<string>)[from];
    const hint =
      allowed === undefined
        ? `'${from}' is not a ${machine} status`
        : allowed.length === 0
          ? `'${from}' is final`
          : `from '${from}' a ${machine} may only become ${allowed.map((s) => `'${s}'`).join(', ')}`;
    super(`illegal ${machine} status transition '${from}' -> '${to}': ${hint}`);
    this.name = 'IllegalTransitionError';
    this.machine = machine;
    this.from = from;
    this.to = to;
  }
}

export function canTransition<M extends StatusMachine>(machine: M, from: StatusOf<M>, to: StatusOf<M>): boolean {
  const allowed = (MACHINES[machine] as Transitions<string>)[from];
  return allowed !== undefined && allowed.includes(to);
}

/** Throws an IllegalTransitionError naming both states unless `from -> to` is allowed. */
export function assertTransition<M extends StatusMachine>(machine: M, from: StatusOf<M>, to: StatusOf<M>): void {
  if (!canTransition(machine, from, to)) throw new IllegalTransitionError(machine, from, to);
}

/** Every allowed (from, to) pair of a machine: for tests and documentation. */
export function allowedTransitions<M extends StatusMachine>(machine: M): Array<[StatusOf<M>, StatusOf<M>]> {
  const table = MACHINES[machine] as Transitions<string>;
  return Object.entries(table).flatMap(([from, tos]) => tos.map((to) => [from, to] as [StatusOf<M>, StatusOf<M>]));
}

/** The statuses a machine may move into `to` from: what a guarded UPDATE ... WHERE status IN (...) needs. */
export function statusesThatMayBecome<M extends StatusMachine>(machine: M, to: StatusOf<M>): Array<StatusOf<M>> {
  const table = MACHINES[machine] as Transitions<string>;
  return Object.entries(table)
    .filter(([, tos]) => tos.includes(to))
    .map(([from]) => from as StatusOf<M>);
}

export const FINAL_UNIT_STATUSES: readonly UnitStatus[] = ['accepted', 'rejected', 'soft_rejected', 'expired'];
/** The unit's work is stored (and perhaps reviewed): a bonus may be paid on it. */
export const SUBMITTED_UNIT_STATUSES: readonly UnitStatus[] = ['completed', 'accepted', 'rejected', 'soft_rejected'];
/** No one works on the unit any more: its work is stored, or it expired. What a finished run leaves. */
export const SETTLED_UNIT_STATUSES: readonly UnitStatus[] = [...SUBMITTED_UNIT_STATUSES, 'expired'];
/** Where a unit goes when its agent leaves before submitting: back to the pool, or expired (a unit made for that worker). */
export const RELEASED_UNIT_STATUSES = ['launched', 'expired'] as const satisfies readonly UnitStatus[];
export type ReleasedUnitStatus = (typeof RELEASED_UNIT_STATUSES)[number];
/** Units that count towards a run's spend (docs/design.md §1). */
export const PAYABLE_UNIT_STATUSES: readonly UnitStatus[] = ['launched', 'assigned', 'completed', 'accepted', 'soft_rejected'];
/** Units occupying a slot under `max_num_concurrent_units`. */
export const ACTIVE_UNIT_STATUSES: readonly UnitStatus[] = ['launched', 'assigned'];
export const FINAL_TASK_RUN_STATUSES: readonly TaskRunStatus[] = ['completed', 'cancelled', 'failed'];
/** An agent in one of these still holds its unit. */
export const ACTIVE_AGENT_STATUSES: readonly AgentStatus[] = ['none', 'accepted', 'onboarding', 'waiting', 'in_task'];
export const AGENT_ABNORMAL_END_STATUSES: readonly AgentStatus[] = AGENT_ABNORMAL_ENDS;
/** The agent left before submitting, and its unit is released: every abnormal end but the run's expiry. */
export const AGENT_LEFT_STATUSES = AGENT_ABNORMAL_ENDS.filter(
  (s): s is Exclude<(typeof AGENT_ABNORMAL_ENDS)[number], 'expired'> => s !== 'expired',
);
export type AgentLeftStatus = (typeof AGENT_LEFT_STATUSES)[number];
/** How a worker leaves a held unit at the provider, without submitting: the study returned, or its time run out there. */
export const PROVIDER_LEAVING_STATUSES = ['returned', 'timeout'] as const satisfies readonly AgentStatus[];
export type ProviderLeavingStatus = (typeof PROVIDER_LEAVING_STATUSES)[number];
/** The agent's submission is stored (and perhaps reviewed). */
export const SUBMITTED_AGENT_STATUSES: readonly AgentStatus[] = ['completed', 'approved', 'rejected', 'soft_rejected'];

export const isFinalUnitStatus = (s: UnitStatus): boolean => FINAL_UNIT_STATUSES.includes(s);
export const isFinalTaskRunStatus = (s: TaskRunStatus): boolean => FINAL_TASK_RUN_STATUSES.includes(s);
/** Whether an agent in `status` still holds its unit; takes any string, as read from a packet or a row. */
export const isActiveAgentStatus = (status: string): boolean => (ACTIVE_AGENT_STATUSES as readonly string[]).includes(status);
