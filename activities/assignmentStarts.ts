/**
 * Starting assignments' workflows and handing agents to them (docs/design.md §6), for runs begun with
 * `REGISTRATION_IN_ONE_TASK`. The workflow task that answers the registrations schedules
 * `startAssignmentWorkflows`, so the hand-over is as durable as the answer without the answer waiting
 * for it; the caller of the update also starts a first agent's assignment workflow at once
 * (gateway/workflowCalls.ts), so the worker's first packets find it even while no worker runs.
 * Either start is the same call, and the second is refused harmlessly.
 *
 * An assignment's workflow starts with its first agent; partners join it by the `agentJoined`
 * signal, after that start (the desk hands them over in that order). Not children of the run: the
 * Temporal UI lists a run's assignments by `HitloopRunId = '<run>'`.
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AssignmentWorkflow } from '../workflows/assignment.ts';
import { agentJoinedSignal, assignmentWorkflowId } from '../workflows/definitions.ts';
import { type AssignmentStart, type HandOver, type HandOverTerms, agentJoinedOf, assignmentInputFor } from '../workflows/handOver.ts';
import { RUN_ID } from '../workflows/searchAttributes.ts';

/** Starts an assignment's workflow with its first agent; done already (by the other starter) is fine. */
export async function startAssignmentWorkflow(client: Client, start: AssignmentStart): Promise<void> {
  try {
    await client.workflow.start<typeof AssignmentWorkflow>('AssignmentWorkflow', {
      workflowId: assignmentWorkflowId(start.input.assignmentId),
      taskQueue: start.taskQueue,
      args: [start.input],
      // An assignment's workflow closes only once no unit of it can be handed out again (all done, or
      // expired with the run): one that ran before is never started again.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [{ key: RUN_ID, value: start.input.runId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/**
 * Hands each agent over; throws (the activity retries) if Temporal did not take one. Assignments in
 * parallel, the agents of one in the order given: its first agent before its partners.
 */
export async function startAssignmentWorkflows(input: { terms: HandOverTerms; handOvers: HandOver[] }): Promise<void> {
  const context = Context.current();
  const byAssignment = Map.groupBy(input.handOvers, (h) => h.agent.assignmentId);
  await Promise.all(
    [...byAssignment.values()].map(async (handOvers) => {
      for (const { agent, startsAssignment } of handOvers) {
        if (startsAssignment) {
          await startAssignmentWorkflow(context.client, { taskQueue: context.info.taskQueue, input: assignmentInputFor(input.terms, agent) });
        } else {
          await joinAssignment(context.client, agent);
        }
        // Alive: the workflow notices a lost attempt by the missing heartbeat (workflows/activityProxies.ts).
        context.heartbeat();
      }
    }),
  );
}

/** A partner joins its assignment's workflow, started by its first agent's hand-over before this one. */
async function joinAssignment(client: Client, agent: HandOver['agent']): Promise<void> {
  const handle = client.workflow.getHandle(assignmentWorkflowId(agent.assignmentId));
  try {
    await handle.signal(agentJoinedSignal, agentJoinedOf(agent));
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // Closed: the run has ended and expired it meanwhile (nothing left to join). Not started: retried.
    const closed = await handle.describe().then(
      (d) => d.status.name !== 'RUNNING',
      () => false,
    );
    if (!closed) throw err;
    Context.current().log.warn('assignment workflow closed before a partner joined it', { assignmentId: agent.assignmentId, agentId: agent.agentId });
  }
}
