/** Every activity a hitloop worker hosts, by the name the Temporal Web UI shows. */
import { createAggregationActivities } from './aggregationActivities.ts';
import { createAssignmentActivities } from './assignmentActivities.ts';
import type { ActivityDeps } from './context.ts';
import { createProviderClosingActivities } from './providerClosing.ts';
import { createProviderPollingActivities } from './providerPolling.ts';
import { createQualificationActivities } from './qualificationActivities.ts';
import { createReviewActivities } from './reviewActivities.ts';
import { createTaskRunActivities } from './taskRunActivities.ts';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createTaskRunActivities(deps),
    ...createAssignmentActivities(deps),
    ...createReviewActivities(deps),
    ...createQualificationActivities(deps),
    ...createAggregationActivities(deps),
    ...createProviderPollingActivities(deps),
    ...createProviderClosingActivities(deps),
  };
}

export type HitloopActivities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './context.ts';
