/**
 * The run's poll of its provider (docs/design.md §5): who left a held unit at the provider without
 * submitting (a returned Prolific study, a timed-out session), when the provider's notification
 * never arrived. The TaskRun workflow calls it on a timer while units are held, and signals each
 * agent found to its assignment, which frees the unit. Reads only: a retry asks again.
 */
import { componentOptions, type TaskRunConfig } from '../config/taskRunConfig.ts';
import { TaskRun } from '../model/entities.ts';
import { agentsLeaving, type LeavingAgent } from '../providers/leavers.ts';
import { providers } from '../registry/builtins.ts';
import { type ActivityDeps, providerContext } from './context.ts';

export function createProviderPollingActivities(deps: ActivityDeps) {
  /** The run's agents still holding a unit whose worker has left at the provider. */
  async function findProviderLeavers(input: { runId: string }): Promise<LeavingAgent[]> {
    const em = deps.db.em();
    const run = await em.findOneOrFail(TaskRun, input.runId, { fields: ['config'] });
    const type = (run.config as unknown as TaskRunConfig).provider.type;
    const provider = providers.get(type);
    if (!provider.leavers) return [];
    const leavers = await provider.leavers(providerContext(deps, em), { runId: input.runId });
    const agents = await agentsLeaving(em, type, input.runId, leavers);
    if (agents.length > 0) deps.log.info({ runId: input.runId, agents: agents.length }, 'workers who left at the provider found by polling');
    return agents;
  }

  return { findProviderLeavers };
}

export type ProviderPollingActivities = ReturnType<typeof createProviderPollingActivities>;

/** Seconds between two polls of a run on its provider, or null when the provider has nothing to poll. */
export function leaversPollSeconds(config: TaskRunConfig): number | null {
  const provider = providers.get(config.provider.type);
  if (!provider.leavers || !provider.leaversPollSeconds) return null;
  return provider.leaversPollSeconds(componentOptions(config.provider));
}
