/**
 * docs/design.md §5: while units are held, ask the provider every `seconds` who left one there
 * (returned, timed out); each such agent is signalled to its assignment, which frees the unit.
 * The fallback for the provider's notifications (webhooks), which may never arrive.
 */
import { condition, getExternalWorkflowHandle, log } from '@temporalio/workflow';
import { isFinalTaskRunStatus } from '../model/status.ts';
import { providerPollingActivities } from './activityProxies.ts';
import { agentReturnedSignal, assignmentWorkflowId } from './definitions.ts';
import type { TaskRun } from './taskRunState.ts';

export async function pollProviderLeavers(run: TaskRun, seconds: number): Promise<void> {
  const s = run.s;
  const done = (): boolean => isFinalTaskRunStatus(s.status) || run.continuing;
  for (;;) {
    await condition(done, seconds * 1000);
    if (done()) return;
    if (Object.keys(s.openAssignments).length === 0) continue;
    let leaving: Awaited<ReturnType<typeof providerPollingActivities.findProviderLeavers>>;
    try {
      leaving = await providerPollingActivities.findProviderLeavers({ runId: run.runId });
    } catch (err) {
      // The provider could not be asked now (its API down, the token refused): the next poll asks again.
      log.warn('polling the provider for workers who left failed', { runId: run.runId, error: String(err) });
      continue;
    }
    for (const agent of leaving) {
      await getExternalWorkflowHandle(assignmentWorkflowId(agent.assignmentId))
        .signal(agentReturnedSignal, { agentId: agent.agentId, status: agent.status })
        .catch((err: unknown) => log.warn('assignment already closed', { assignmentId: agent.assignmentId, error: String(err) }));
    }
  }
}
