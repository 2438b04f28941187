/**
 * The side effect of an onboarding submission (docs/design.md §3): the blueprint's validator decides it, the
 * onboarding qualification is granted (1 pass, 0 fail) with the attempt's status in one
 * transaction, and the worker's provider is told. Decided once: a repeat gets the same verdict.
 */
import { componentOptions, type TaskRunConfig } from '../config/taskRunConfig.ts';
import { TaskRun } from '../model/entities.ts';
import { OnboardingError, decideOnboarding as decideOnce } from '../qualifications/onboarding.ts';
import { blueprints, providers } from '../registry/builtins.ts';
import type { OnboardingSubmit } from '../workflows/definitions.ts';
import { type ActivityDeps, permanentFailure, providerContext } from './context.ts';

export function createQualificationActivities(deps: ActivityDeps) {
  const { db } = deps;

  async function decideOnboarding(input: OnboardingSubmit & { runId: string }): Promise<{ passed: boolean }> {
    const run = await db.em().findOne(TaskRun, input.runId, { fields: ['config'] });
    if (!run) throw permanentFailure('UnknownTaskRun', `task run ${input.runId} is not in the database`);
    const config = run.config as unknown as TaskRunConfig;
    const blueprint = blueprints.get(config.blueprint.type);
    let verdict;
    try {
      verdict = await db.em().transactional((em) =>
        decideOnce(em, {
          runId: input.runId,
          config,
          blueprint,
          blueprintOptions: componentOptions(config.blueprint),
          onboardingAgentId: input.onboardingAgentId,
          provider: input.provider,
          providerWorkerId: input.providerWorkerId,
          data: input.data,
        }),
      );
    } catch (err) {
      if (err instanceof OnboardingError) throw permanentFailure('OnboardingRefused', err.message);
      throw err;
    }
    // After the commit, and again on a retry: the provider answers a repeated key from its record.
    const em = db.em();
    await providers.get(input.provider).grantQualification(providerContext(deps, em), {
      workerId: input.providerWorkerId,
      qualification: verdict.qualification,
      value: verdict.value,
      requestKey: `onboarding:${input.onboardingAgentId}`,
    });
    deps.log.info(
      { runId: input.runId, onboardingAgentId: input.onboardingAgentId, passed: verdict.passed, reason: verdict.reason },
      'onboarding decided',
    );
    return { passed: verdict.passed };
  }

  return { decideOnboarding };
}

export type QualificationActivities = ReturnType<typeof createQualificationActivities>;
