/**
 * The gateway's part in onboarding, played by the test through the Temporal client: register
 * (the `requestUnit` update) with a chosen registration key, then answer the onboarding step with
 * the `submitOnboarding` update. Also: drop an agent's connection (its reconnect window starts).
 */
import type { Client } from '@temporalio/client';
import { WorkflowCalls } from '../../gateway/workflowCalls.ts';
import {
  type UnitRequestResult,
  agentDisconnectedSignal,
  submitOnboardingUpdate,
  taskRunWorkflowId,
} from '../../workflows/definitions.ts';
import { requestUnitWithKey } from './scriptedAgents.ts';

export type Onboarding = Extract<UnitRequestResult, { outcome: 'onboarding' }>;

export async function register(client: Client, runId: string, worker: string, registrationKey: string): Promise<UnitRequestResult> {
  return requestUnitWithKey(client, runId, worker, registrationKey);
}

export async function submitOnboarding(
  client: Client,
  runId: string,
  args: { worker: string; registrationKey: string; onboardingAgentId: string; data: Record<string, unknown>; submitKey?: string },
): Promise<UnitRequestResult> {
  return client.workflow.getHandle(taskRunWorkflowId(runId)).executeUpdate(submitOnboardingUpdate, {
    args: [
      {
        provider: 'mock',
        providerWorkerId: args.worker,
        registrationKey: args.registrationKey,
        onboardingAgentId: args.onboardingAgentId,
        submitKey: args.submitKey ?? `ob-submit-${args.onboardingAgentId}`,
        data: args.data,
      },
    ],
  });
}

export async function disconnect(client: Client, assignmentId: string, agentId: string): Promise<void> {
  await new WorkflowCalls(client).signalAssignment(assignmentId, agentDisconnectedSignal, { agentId, connectionId: 'test-socket' });
}
