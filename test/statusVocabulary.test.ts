/**
 * The named status lists of model/status.ts agree with its transition tables, so a list and the
 * machine cannot drift apart.
 */
import { describe, expect, it } from 'vitest';
import {
  ACTIVE_AGENT_STATUSES,
  AGENT_LEFT_STATUSES,
  RELEASED_UNIT_STATUSES,
  SETTLED_UNIT_STATUSES,
  SUBMITTED_UNIT_STATUSES,
  UNIT_STATUSES,
  allowedTransitions,
  isActiveAgentStatus,
} from '../model/status.ts';

const targetsFrom = (machine: 'unit' | 'agent', from: string): string[] =>
  allowedTransitions(machine)
    .filter(([f]) => f === from)
    .map(([, to]) => to);

describe('status vocabulary', () => {
  it('a released unit goes where an assigned unit may go without its work', () => {
    expect([...RELEASED_UNIT_STATUSES].sort()).toEqual(targetsFrom('unit', 'assigned').filter((s) => s !== 'completed').sort());
  });

  it('an agent leaves in_task for the statuses of AGENT_LEFT_STATUSES, or completes, or is expired by the run', () => {
    expect([...AGENT_LEFT_STATUSES, 'completed', 'expired'].sort()).toEqual(targetsFrom('agent', 'in_task').sort());
  });

  it('settled units are the submitted ones and the expired: every unit status no one still works on', () => {
    expect(SETTLED_UNIT_STATUSES).toEqual([...SUBMITTED_UNIT_STATUSES, 'expired']);
    const pending = UNIT_STATUSES.filter((s) => !SETTLED_UNIT_STATUSES.includes(s));
    expect(pending).toEqual(['created', 'launched', 'assigned']);
    // Submitted work is never taken back: from a submitted status a unit only moves to another one.
    for (const s of SUBMITTED_UNIT_STATUSES) for (const to of targetsFrom('unit', s)) expect(SUBMITTED_UNIT_STATUSES).toContain(to);
  });

  it('isActiveAgentStatus takes any string and answers for ACTIVE_AGENT_STATUSES only', () => {
    for (const s of ACTIVE_AGENT_STATUSES) expect(isActiveAgentStatus(s)).toBe(true);
    for (const s of ['completed', 'returned', 'expired', 'passed', 'IN_TASK', '']) expect(isActiveAgentStatus(s)).toBe(false);
  });
});
