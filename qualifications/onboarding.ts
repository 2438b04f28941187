/**
 * Onboarding (docs/design.md §3): a worker without the run's onboarding qualification first gets the
 * blueprint's onboarding step; the blueprint's validator decides their answers. Pass grants the
 * qualification 1 (and the worker goes on to a unit), fail grants it 0 (refused from then on, until
 * an operator revokes it). Each attempt is an OnboardingAgent row.
 */
import { LockMode } from '@mikro-orm/core';
import type { Blueprint } from '../blueprints/types.ts';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import type { EntityManager } from '../model/database.ts';
import { OnboardingAgent, Worker } from '../model/entities.ts';
import { transitionOnboardingAgent } from '../model/transitions.ts';
import type { UnitRequestResult } from '../workflows/definitions.ts';
import { onboardingAgentIdFor } from '../registration/ids.ts';
import { ensureQualification, findQualification, grantValue, setGrant } from './grants.ts';

/** How many ended onboarding attempts one registration may leave behind before another is refused. */
const MAX_ATTEMPTS_PER_REGISTRATION = 20;

export class OnboardingError extends Error {
  override name = 'OnboardingError';
}

/**
 * What the worker's page gets for onboarding: the blueprint's own `onboardingInitData` when it has
 * one, else its `onboarding` options without the expected answers (static-form: the form's fields).
 */
export function onboardingInitData(blueprint: Blueprint, options: Record<string, unknown>): Record<string, unknown> {
  const own = (blueprint as Blueprint & { onboardingInitData?: (options: unknown) => Record<string, unknown> }).onboardingInitData;
  if (own) return { onboarding: true, ...own(options) };
  const section = options.onboarding;
  const { expected: _answers, ...shown } = typeof section === 'object' && section !== null ? (section as Record<string, unknown>) : {};
  return { onboarding: true, ...shown, instructions: options.instructions ?? null };
}

/** Start (or find, for a retried register) the worker's onboarding attempt for this registration. */
export async function startOnboarding(
  em: EntityManager,
  args: { runId: string; worker: Worker; registrationKey: string; blueprint: Blueprint; blueprintOptions: Record<string, unknown> },
): Promise<Extract<UnitRequestResult, { outcome: 'onboarding' }>> {
  const answer = (onboardingAgentId: string, newlyStarted: boolean) =>
    ({
      outcome: 'onboarding',
      onboardingAgentId,
      workerId: args.worker.id,
      initData: onboardingInitData(args.blueprint, args.blueprintOptions),
      newlyStarted,
    }) as const;
  // One onboarding per worker and run at a time: another session (another key) gets the open one.
  const open = await em.findOne(OnboardingAgent, { taskRun: args.runId, worker: args.worker.id, status: 'onboarding' }, { fields: ['id'] });
  if (open) return answer(open.id, false);
  for (let attempt = 0; attempt < MAX_ATTEMPTS_PER_REGISTRATION; attempt++) {
    const id = onboardingAgentIdFor(args.runId, args.worker.id, args.registrationKey, attempt);
    const existing = await em.findOne(OnboardingAgent, id, { fields: ['status'] });
    if (existing?.status === 'onboarding') return answer(id, false);
    // Decided before and cleared since by an operator: a fresh attempt.
    if (existing) continue;
    await em.insert(OnboardingAgent, { id, taskRun: args.runId, worker: args.worker.id, status: 'onboarding', createdAt: new Date() });
    return answer(id, true);
  }
  throw new OnboardingError(
    `registration ${args.registrationKey} has started ${MAX_ATTEMPTS_PER_REGISTRATION} onboarding attempts; reload the task page`,
  );
}

export interface OnboardingVerdict {
  passed: boolean;
  reason?: string;
  workerId: string;
  /** The qualification and value now granted, for the provider. */
  qualification: string;
  value: number;
}

/**
 * Decide an onboarding attempt once: its status moves onboarding -> passed | failed in the same
 * transaction as the grant, so a repeated submission (or a retried activity) gets the same verdict
 * and grants nothing twice.
 */
export async function decideOnboarding(
  em: EntityManager,
  args: {
    runId: string;
    config: TaskRunConfig;
    blueprint: Blueprint;
    blueprintOptions: Record<string, unknown>;
    onboardingAgentId: string;
    provider: string;
    providerWorkerId: string;
    data: Record<string, unknown>;
  },
): Promise<OnboardingVerdict> {
  const qualification = args.config.onboarding_qualification;
  if (!qualification) throw new OnboardingError(`run ${args.runId} has no onboarding (no onboarding_qualification in its config)`);
  const validate = args.blueprint.validators?.onboarding;
  if (!validate) throw new OnboardingError(`blueprint ${args.blueprint.type} has no onboarding validator`);
  const ob = await em.findOne(OnboardingAgent, args.onboardingAgentId, { populate: ['worker'] });
  const worker = ob?.worker.getEntity();
  if (!ob || ob.taskRun.id !== args.runId || worker?.provider !== args.provider || worker.providerWorkerId !== args.providerWorkerId) {
    throw new OnboardingError(
      `there is no onboarding ${args.onboardingAgentId} of run ${args.runId} for worker ${args.provider} ${args.providerWorkerId}; register again`,
    );
  }
  if (ob.status === 'passed' || ob.status === 'failed') {
    return { passed: ob.status === 'passed', workerId: worker.id, qualification, value: ob.status === 'passed' ? 1 : 0 };
  }
  if (ob.status !== 'onboarding') throw new OnboardingError(`onboarding ${ob.id} has ended (${ob.status}); register again`);
  // One decision per worker at a time (answers from several sessions are serialised on the worker),
  // and a verdict already granted stands: a fail is final, whichever session answers next.
  // (SQLite runs one write transaction at a time already and has no row locks.)
  if (em.getPlatform().constructor.name.toLowerCase().includes('postgre')) {
    await em.findOne(Worker, worker.id, { lockMode: LockMode.PESSIMISTIC_WRITE });
  }
  const known = await findQualification(em, qualification);
  const granted = known ? await grantValue(em, worker.id, known.id) : undefined;
  const verdict = granted === undefined ? validate(args.data, args.blueprintOptions) : { passed: granted > 0, reason: 'decided before' };
  const value = verdict.passed ? 1 : 0;
  await transitionOnboardingAgent(em, ob.id, verdict.passed ? 'passed' : 'failed', { submission: args.data, endedAt: new Date() });
  const q = await ensureQualification(em, qualification, `passed the onboarding of task ${args.config.task_name} (1) or failed it (0)`);
  await setGrant(em, { workerId: worker.id, qualificationId: q.id, value });
  return { passed: verdict.passed, ...(verdict.reason ? { reason: verdict.reason } : {}), workerId: worker.id, qualification, value };
}
