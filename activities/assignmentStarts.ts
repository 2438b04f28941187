/**
 * Handing newly assigned agents to their assignments' workflows (docs/design.md §6), for runs begun
 * with `REGISTRATION_IN_ONE_TASK`: the workflow task that answers the registrations schedules this
 * activity, so the answer waits for no workflow start and the TaskRun workflow has no children to
 * wait for. Signal-with-start is one call whether the assignment's workflow is new (started with the
 * agent as its first) or open already (a partner joins: the signal alone); the assignment workflow
 * ignores an agent it knows, so a retry hands the same agents over again harmlessly.
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { AssignmentWorkflow } from '../workflows/assignment.ts';
import { agentJoinedSignal, assignmentWorkflowId } from '../workflows/definitions.ts';
import { type Assigned, type HandOverTerms, agentJoinedOf, assignmentInputFor } from '../workflows/handOver.ts';
import { RUN_ID } from '../workflows/searchAttributes.ts';

/**
 * Hands each agent to its assignment's workflow; throws (the activity retries) if Temporal did not
 * take one. Assignments in parallel, the agents of one in the order given: its first agent (the one
 * the workflow starts with, answered before this ran) before its partners.
 */
export async function startAssignmentWorkflows(input: { terms: HandOverTerms; agents: Assigned[] }): Promise<void> {
  const { client, info } = Context.current();
  const byAssignment = Map.groupBy(input.agents, (agent) => agent.assignmentId);
  await Promise.all(
    [...byAssignment.values()].map(async (agents) => {
      for (const agent of agents) await handOver(client, info.taskQueue, input.terms, agent);
    }),
  );
}

async function handOver(client: Client, taskQueue: string, terms: HandOverTerms, agent: Assigned): Promise<void> {
  try {
    await client.workflow.signalWithStart<typeof AssignmentWorkflow, [ReturnType<typeof agentJoinedOf>]>('AssignmentWorkflow', {
      workflowId: assignmentWorkflowId(agent.assignmentId),
      taskQueue,
      args: [assignmentInputFor(terms, agent)],
      signal: agentJoinedSignal,
      signalArgs: [agentJoinedOf(agent)],
      // An assignment's workflow closes only once no unit of it can be handed out again (all done, or
      // expired with the run): a closed one here means this agent was handed over before (a retry after
      // the assignment ended), never a reason to start it again.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      // Not a child of the run: the Temporal UI lists a run's assignments by `HitloopRunId = '<run>'`.
      typedSearchAttributes: [{ key: RUN_ID, value: terms.runId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
