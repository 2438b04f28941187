/**
 * The end of a run at its provider (docs/design.md §5): once the run is completed, cancelled or
 * failed, the provider withdraws what workers could still take there (MTurk: HITs with a free slot,
 * which would otherwise stay open until their lifetime). The TaskRun workflow calls it once, after
 * the run's status is on record; providers without `closeRun` have nothing to do.
 */
import { Context } from '@temporalio/activity';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import { TaskRun } from '../model/entities.ts';
import { providers } from '../registry/builtins.ts';
import { type ActivityDeps, providerContext } from './context.ts';

/** How often the activity tells Temporal its worker is alive while the provider works through the run. */
const HEARTBEAT_MS = 5_000;

export function createProviderClosingActivities(deps: ActivityDeps) {
  /** Withdraw at the provider whatever of the ended run workers could still take. Idempotent. */
  async function closeRunAtProvider(input: { runId: string }): Promise<void> {
    const em = deps.db.em();
    const run = await em.findOne(TaskRun, input.runId, { fields: ['config'] });
    // Never registered (its config was refused): nothing of it exists at any provider.
    if (!run) return;
    const provider = providers.get((run.config as unknown as TaskRunConfig).provider.type);
    if (!provider.closeRun) return;
    // A large account takes many pages to list: the heartbeat lets a crashed worker's attempt be retried soon.
    const activity = Context.current();
    const beat = setInterval(() => activity.heartbeat(), HEARTBEAT_MS);
    try {
      await provider.closeRun(providerContext(deps, em), { runId: input.runId });
    } finally {
      clearInterval(beat);
    }
  }

  return { closeRunAtProvider };
}

export type ProviderClosingActivities = ReturnType<typeof createProviderClosingActivities>;
