/**
 * AssignmentWorkflow's own decisions with stub activities (the real workflow code on the tests' dev
 * server, activities scripted here): an agent that a run's shutdown expired before it could start
 * ends with the assignment instead of failing it.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AssignmentWorkflow, type AssignmentInput } from '../workflows/assignment.ts';
import { assignmentStateQuery, expireAssignmentSignal } from '../workflows/definitions.ts';
import { eventually } from './support/stack.ts';
import { type StubWorker, startStubWorker } from './support/temporal.ts';

/** Agents the "database" has already expired (a shutdown ran before the assignment started them). */
const expiredInDatabase = new Set<string>();
const statusCalls: Array<{ agentIds: string[]; status: string }> = [];

const stubs = {
  setAgentsStatus: async (input: { agentIds: string[]; status: string }) => {
    statusCalls.push(input);
    const expired = input.agentIds.find((id) => expiredInDatabase.has(id));
    if (expired) throw ApplicationFailure.nonRetryable(`agent ${expired}: expired -> ${input.status} is not allowed`, 'IllegalTransitionError');
  },
  releaseUnit: async () => ({ unitStatus: 'launched' }),
  recordAgentAction: async () => undefined,
  recordSubmission: async () => ({ accepted: true }),
  aggregateItem: async () => ({ units: 1 }),
  autoApproveUnits: async () => undefined,
};

describe('AssignmentWorkflow with stub activities', () => {
  let env: TestWorkflowEnvironment;
  let taskQueue: string;
  let stubWorker: StubWorker | undefined;
  beforeAll(async () => {
    stubWorker = await startStubWorker('assignment-stubs', stubs);
    ({ env, taskQueue } = stubWorker);
  });
  afterAll(async () => {
    await stubWorker?.stop();
  });

  const input = (assignmentId: string, agentId: string, extra: Partial<AssignmentInput> = {}): AssignmentInput => ({
    runId: `r-${assignmentId}`,
    assignmentId,
    unitsPerAssignment: 1,
    assignmentDurationSeconds: 3600,
    reconnectWindowSeconds: 60,
    autoApproveAfterSeconds: 0,
    firstAgent: { agentId, unitId: `u-${agentId}`, workerId: `w-${agentId}` },
    ...extra,
  });

  for (const independent of [false, true]) {
    it(`an agent expired by a shutdown before it started: the assignment ends with the expiry, not failed (${independent ? 'independent unit' : 'shared assignment'})`, async () => {
      const assignmentId = `a-${randomUUID().slice(0, 8)}`;
      const agentId = `ag-${assignmentId}`;
      expiredInDatabase.add(agentId);
      const handle = await env.client.workflow.start(AssignmentWorkflow, {
        taskQueue,
        workflowId: `assignment-${assignmentId}`,
        args: [input(assignmentId, agentId, independent ? { independent: true } : {})],
      });
      // The refused start is seen, and the agent no longer holds the unit.
      await eventually(async () => {
        const view = await handle.query(assignmentStateQuery);
        return view.agents[0]?.status === 'expired' ? view : undefined;
      }, 'the agent to be expired in the workflow');
      expect(statusCalls.some((c) => c.agentIds.includes(agentId) && c.status === 'in_task')).toBe(true);
      // The run's expiry signal, sent as it ends, ends the assignment.
      await handle.signal(expireAssignmentSignal, { reason: 'operator' });
      expect(await handle.result()).toEqual({ completedUnits: [], expired: 'operator' });
    });
  }
});
