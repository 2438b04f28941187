/**
 * The `prolific` provider: a run is one Prolific study (docs/design.md §5).
 *
 * - setUpRun checks the workspace balance against the run's worst case, creates a draft study whose
 *   URL is the run's task link (Prolific fills in PROLIFIC_PID, STUDY_ID, SESSION_ID), records it,
 *   then publishes it. A crash between create and record is found again by the study's
 *   `internal_name` (`hitloop:<runId>`), so no second study is made.
 * - launchUnit raises `total_available_places` to the number of units launched (places only go up).
 * - identifyWorker trusts PROLIFIC_PID only after Prolific shows that session as an active
 *   submission of that participant in this run's study; the answer is cached.
 * - Reviews transition the participant's submission; soft-reject approves at Prolific.
 * - Qualifications and blocks: per-run participant groups named by the study's filters, kept up to
 *   date by grants and blocks (groups.ts). Returned and timed-out participants free their unit by
 *   webhook (webhook.ts) or, when none arrives, by the run's poll of the study's submissions (`leavers`).
 * - Bonuses: set up (recorded), then paid (recorded before and after the call, which Prolific does
 *   not make idempotent). After a crash the payment is read back; when that cannot tell, the bonus
 *   is parked for the operator instead of paid twice.
 * Every call is recorded in `provider_call` (operation, request key) like the in-house providers.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { ProviderCall, TaskRun, Unit } from '../../model/entities.ts';
import type { ProviderLeavingStatus } from '../../model/status.ts';
import { COMPLETION_SIG_PARAM, COMPLETION_URL_PARAM, completionLinkSignature } from '../completionLinks.ts';
import { recordOnce } from '../inHouse.ts';
import type { TaskRunConfig } from '../../config/taskRunConfig.ts';
import type { Leaver } from '../leavers.ts';
import type { CrowdProvider, ProviderContext, WorkerIdentity } from '../types.ts';
import { isValidProviderWorkerId } from '../workerIds.ts';
import { MIN_REJECTION_MESSAGE, ProlificApiError, ProlificClient, REJECTION_CATEGORIES } from './client.ts';
import { applyToRunGroups, groupFilters, setUpRunGroups } from './groups.ts';
import { prolificSettings } from './settings.ts';

export const PROLIFIC_PROVIDER = 'prolific';
/** Prolific's service fee on rewards and bonuses (33.3% for most studies; VAT may come on top). */
export const DEFAULT_SERVICE_FEE_RATE = 1 / 3;
export const WEBHOOK_PATH = '/providers/prolific/webhook';

export const prolificOptionsSchema = z.strictObject({
  workspace_id: z.string().min(1, 'must be your Prolific workspace id (Prolific: Workspace settings)'),
  project_id: z.string().min(1).optional(),
  estimated_completion_minutes: z.int().min(1).default(5),
  device_compatibility: z
    .array(z.enum(['desktop', 'tablet', 'mobile']))
    .min(1)
    .default(['desktop']),
  /** Passed to Prolific as `eligibility_requirements`, unchanged. */
  eligibility: z.array(z.record(z.string(), z.unknown())).default([]),
  currency: z.enum(['GBP', 'USD']).default('GBP'),
  service_fee_rate: z.number().min(0).max(1).default(DEFAULT_SERVICE_FEE_RATE),
  /** Why a rejected participant was rejected (Prolific asks for a category). */
  rejection_category: z.enum(REJECTION_CATEGORIES).default('OTHER'),
  /**
   * How often the run reads the study's submissions for returned and timed-out participants while
   * units are held: the fallback when Prolific's webhook does not arrive (docs/design.md §5).
   */
  status_poll_seconds: z.int().min(1).max(3600).default(60),
});
export type ProlificOptions = z.output<typeof prolificOptionsSchema>;

const SUBMISSION_GONE = new Set(['RETURNED', 'TIMED-OUT', 'REJECTED']);
/** Prolific's submission statuses of a participant who left without completing, in model/status.ts's words. */
const LEAVING_STATUSES: Readonly<Record<string, ProviderLeavingStatus>> = { RETURNED: 'returned', 'TIMED-OUT': 'timeout' };

/** How a participant whose submission is `status` left their unit, or null when they did not. */
export function leavingStatusOf(status: string): ProviderLeavingStatus | null {
  return Object.hasOwn(LEAVING_STATUSES, status) ? LEAVING_STATUSES[status]! : null;
}
const REVIEWED = new Set(['APPROVED', 'REJECTED', 'PROCESSING']);

export function studyInternalName(runId: string): string {
  return `hitloop:${runId}`;
}

function client(ctx: { settings: ProviderContext['settings'] }): ProlificClient {
  return new ProlificClient(prolificSettings(ctx.settings));
}

/** A Prolific refusal that asking again cannot fix fails the activity at once, with Prolific's words. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ProlificApiError && !err.retryable) throw ApplicationFailure.nonRetryable(err.message, 'ProlificRefused');
    throw err;
  }
}

interface StudyRecord {
  studyId: string;
  workspaceId: string;
  completionCode: string;
}

async function studyOf(ctx: ProviderContext, runId: string): Promise<StudyRecord> {
  const row = await ctx.em.findOne(ProviderCall, { provider: PROLIFIC_PROVIDER, operation: 'study', target: runId });
  if (!row)
    throw ApplicationFailure.nonRetryable(`run ${runId} has no Prolific study on record: its set-up did not finish`, 'ProlificNoStudy');
  return row.payload as unknown as StudyRecord;
}

async function runOfUnit(ctx: ProviderContext, unitId: string): Promise<string> {
  const unit = await ctx.em.findOneOrFail(Unit, unitId, { fields: ['taskRun'] });
  return unit.taskRun.id;
}

/** The run whose study this is (webhooks name the study). */
export async function runOfStudy(em: ProviderContext['em'], studyId: string): Promise<string | null> {
  const row = await em.findOne(ProviderCall, { provider: PROLIFIC_PROVIDER, operation: 'study', requestKey: studyId });
  return row?.target ?? null;
}

/** Minor units (pence, cents) of an amount in the currency's major unit. */
export function minorUnits(amount: number): number {
  return Math.round(amount * 100);
}

function taskLink(ctx: ProviderContext, runId: string, completionUrl: string): string {
  const base = `${ctx.settings.gatewayUrl.replace(/\/+$/, '')}/task/${encodeURIComponent(runId)}`;
  const sig = completionLinkSignature(ctx.settings.secret, runId, completionUrl);
  // Prolific replaces the {{%...%}} placeholders per participant; they must stay unencoded.
  return (
    `${base}?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}` +
    `&${COMPLETION_URL_PARAM}=${encodeURIComponent(completionUrl)}&${COMPLETION_SIG_PARAM}=${sig}`
  );
}

async function setUpStudy(ctx: ProviderContext, runId: string, options: ProlificOptions): Promise<StudyRecord> {
  const recorded = await ctx.em.findOne(ProviderCall, { provider: PROLIFIC_PROVIDER, operation: 'study', target: runId });
  if (recorded) return recorded.payload as unknown as StudyRecord;
  const api = client(ctx);
  const run = await ctx.em.findOneOrFail(TaskRun, runId);
  const config = run.config as unknown as TaskRunConfig;
  let study = (await api.listStudies()).find((s) => s.internal_name === studyInternalName(runId));
  if (!study) {
    const units = await ctx.em.count(Unit, { taskRun: runId });
    const worstCase = minorUnits(config.task_reward) * units;
    const fee = Math.ceil(worstCase * options.service_fee_rate);
    const balance = await api.workspaceBalance(options.workspace_id);
    if (worstCase + fee > balance.available_balance) {
      const money = (n: number) => `${(n / 100).toFixed(2)} ${balance.currency_code}`;
      throw ApplicationFailure.nonRetryable(
        `the Prolific workspace ${options.workspace_id} has ${money(balance.available_balance)}, but this run may cost ${money(worstCase + fee)} ` +
          `(${units} units x ${config.task_reward} + Prolific's fee ${money(fee)}); top up the workspace or lower task_reward / the number of units`,
        'ProlificInsufficientBalance',
      );
    }
    // Made before the study: its filters name them, and a published study's filters are frozen.
    const groups = await setUpRunGroups(ctx, api, PROLIFIC_PROVIDER, { runId, config, workspaceId: options.workspace_id });
    const completionCode = randomBytes(6).toString('hex').toUpperCase();
    const completionUrl = `${prolificSettings(ctx.settings).appUrl}/submissions/complete?cc=${completionCode}`;
    study = await api.createStudy({
      name: config.task_title,
      internal_name: studyInternalName(runId),
      description: config.task_description,
      external_study_url: taskLink(ctx, runId, completionUrl),
      prolific_id_option: 'url_parameters',
      completion_codes: [{ code: completionCode, code_type: 'COMPLETED', actions: [{ action: 'MANUALLY_REVIEW' }] }],
      estimated_completion_time: options.estimated_completion_minutes,
      maximum_allowed_time: Math.max(1, Math.ceil(config.assignment_duration_seconds / 60)),
      reward: minorUnits(config.task_reward),
      // Prolific wants at least one place; launching units raises it.
      total_available_places: 1,
      device_compatibility: options.device_compatibility,
      eligibility_requirements: options.eligibility,
      filters: groupFilters(groups),
      workspace: options.workspace_id,
      ...(options.project_id ? { project: options.project_id } : {}),
    });
  }
  const code = study.completion_codes?.find((c) => c.code_type === 'COMPLETED')?.code ?? '';
  const record: StudyRecord = { studyId: study.id, workspaceId: options.workspace_id, completionCode: code };
  await ctx.em.insert(ProviderCall, {
    provider: PROLIFIC_PROVIDER,
    operation: 'study',
    requestKey: study.id,
    target: runId,
    payload: { ...record },
    createdAt: new Date(),
  });
  return record;
}

async function subscribeWebhook(ctx: ProviderContext, workspaceId: string): Promise<void> {
  if (!prolificSettings(ctx.settings).webhookSecret) {
    ctx.log.warn(
      'no Prolific webhook secret (HITLOOP_PROLIFIC_WEBHOOK_SECRET): returned and timed-out participants free their unit only at the assignment timeout',
    );
    return;
  }
  const api = client(ctx);
  const target = `${ctx.settings.gatewayUrl.replace(/\/+$/, '')}${WEBHOOK_PATH}`;
  const hooks = await api.hooks();
  if (!hooks.some((h) => h.target_url === target && h.event_type === 'submission.status.change')) {
    await api.subscribe(workspaceId, 'submission.status.change', target);
  }
}

/**
 * A participant's units share one submission, so two reviews (or a retry after a crash) may race to
 * transition it: a refusal is fine when the submission turns out reviewed already.
 */
async function transitionOnce(api: ProlificClient, submissionId: string, transition: () => Promise<unknown>): Promise<void> {
  try {
    await transition();
  } catch (err) {
    if (!(err instanceof ProlificApiError) || err.status !== 400) throw err;
    const now = await api.getSubmission(submissionId);
    if (!REVIEWED.has(now.status)) throw err;
  }
}

/** The participant's submission in the study, the one a review or bonus is about. */
async function submissionOf(api: ProlificClient, studyId: string, participantId: string) {
  const all = await api.studySubmissions(studyId);
  const mine = all.filter((s) => s.participant === participantId);
  return mine.find((s) => !SUBMISSION_GONE.has(s.status)) ?? mine[0];
}

// ------------------------------------------------------------------ worker identity

/** Confirmed sessions: (run, study, session, participant) -> true. Bounded; the oldest go first. */
const confirmed = new Map<string, true>();
const CONFIRMED_MAX = 50_000;
const ID = /^[A-Za-z0-9]{1,64}$/;

async function identify(request: Parameters<NonNullable<CrowdProvider['identifyWorker']>>[0]): Promise<WorkerIdentity> {
  const { runId, params } = request;
  const pid = params.PROLIFIC_PID;
  const studyId = params.STUDY_ID;
  const sessionId = params.SESSION_ID;
  if (!pid || !studyId || !sessionId) {
    return { ok: false, message: 'this link lacks PROLIFIC_PID, STUDY_ID or SESSION_ID: open the study from Prolific again' };
  }
  if (!isValidProviderWorkerId(pid) || !ID.test(studyId) || !ID.test(sessionId)) {
    return { ok: false, message: 'the Prolific ids in this link are not valid: open the study from Prolific again' };
  }
  const key = `${runId}|${studyId}|${sessionId}|${pid}`;
  if (confirmed.has(key)) return { ok: true, providerWorkerId: pid };
  if (!request.settings) return { ok: false, message: 'the gateway has no Prolific settings; it cannot confirm Prolific sessions' };
  const api = new ProlificClient(prolificSettings(request.settings), { attempts: 2, timeoutMs: 10_000 });
  try {
    const study = await api.getStudy(studyId);
    if (study.internal_name !== studyInternalName(runId)) {
      return { ok: false, message: 'this Prolific study is not the one of this task: open the study from Prolific again' };
    }
    const submission = await api.getSubmission(sessionId);
    if (submission.participant !== pid || submission.study_id !== studyId) {
      return {
        ok: false,
        message: 'this Prolific session belongs to another participant or study: open the study from your own Prolific account',
      };
    }
    if (submission.status !== 'ACTIVE') {
      return {
        ok: false,
        message: `your Prolific session is ${submission.status.toLowerCase()}, not active: this study cannot be worked on any more from it`,
      };
    }
  } catch (err) {
    if (err instanceof ProlificApiError && err.status === 404) {
      return { ok: false, message: 'Prolific does not know this study or session: open the study from Prolific again' };
    }
    request.log?.warn({ err: (err as Error).message, runId }, 'could not confirm a Prolific session');
    return { ok: false, message: 'Prolific could not confirm your session just now; reload this page in a minute' };
  }
  if (confirmed.size >= CONFIRMED_MAX) confirmed.delete(confirmed.keys().next().value!);
  confirmed.set(key, true);
  return { ok: true, providerWorkerId: pid };
}

// ------------------------------------------------------------------ bonuses

async function payBonusOnce(ctx: ProviderContext, req: Parameters<CrowdProvider['payBonus']>[1]): Promise<{ providerRef: string }> {
  const find = (operation: string) =>
    ctx.em.fork().findOne(ProviderCall, { provider: PROLIFIC_PROVIDER, operation, requestKey: req.requestKey });
  const record = (operation: string, payload: Record<string, unknown>) =>
    ctx.em.insert(ProviderCall, {
      provider: PROLIFIC_PROVIDER,
      operation,
      requestKey: req.requestKey,
      // One row per operation and bonus request (a worker may get several bonuses).
      target: req.requestKey,
      payload,
      createdAt: new Date(),
    });

  const paid = await find('bonusPaid');
  if (paid) return { providerRef: String((paid.payload as { bulkId: string }).bulkId) };
  const api = client(ctx);
  let setUp = await find('bonusSetUp');
  if (!setUp) {
    const { studyId } = await studyOf(ctx, await runOfUnit(ctx, req.unitId));
    // A crash after this call and before the record leaves a set-up that is never paid: no money moves.
    const bulk = await api.setUpBonus(studyId, req.workerId, req.amount);
    await record('bonusSetUp', { bulkId: bulk.id, amount: req.amount, total: bulk.total_amount });
    setUp = await find('bonusSetUp');
  }
  const bulkId = String((setUp!.payload as { bulkId: string }).bulkId);
  const attempted = await find('bonusPayAttempt');
  if (attempted) {
    // A pay call was made (or was about to be) before a crash: ask Prolific whether it went through.
    let status: string | undefined;
    try {
      status = (await api.getBonus(bulkId)).status;
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message, bulkId }, 'could not read a bonus payment back');
    }
    if (status === 'PAID') {
      await record('bonusPaid', { bulkId, recovered: true });
      return { providerRef: bulkId };
    }
    if (status !== 'SET_UP') {
      if (!(await find('bonusParked')))
        await record('bonusParked', { bulkId, unitId: req.unitId, amount: req.amount, readBack: status ?? null });
      throw ApplicationFailure.nonRetryable(
        `bonus ${req.requestKey} (Prolific bulk payment ${bulkId}) may or may not have been paid and Prolific could not tell (status ${status ?? 'unreadable'}); ` +
          'it is parked, not paid again: check the payment in Prolific, then see `hitloop review bonus --status`',
        'ProlificBonusParked',
      );
    }
  }
  if (!attempted) await record('bonusPayAttempt', { bulkId });
  await api.payBonus(bulkId);
  await record('bonusPaid', { bulkId });
  return { providerRef: bulkId };
}

export const prolificProvider: CrowdProvider = {
  type: PROLIFIC_PROVIDER,
  optionsSchema: prolificOptionsSchema,

  identifyWorker: identify,

  async leavers(ctx, { runId }) {
    return guard(async () => {
      const { studyId } = await studyOf(ctx, runId);
      const leavers: Leaver[] = [];
      for (const submission of await client(ctx).studySubmissions(studyId)) {
        const status = leavingStatusOf(submission.status);
        if (status && submission.participant) leavers.push({ providerWorkerId: submission.participant, status });
      }
      return leavers;
    });
  },

  leaversPollSeconds(options) {
    const parsed = prolificOptionsSchema.safeParse(options ?? {});
    return parsed.success ? parsed.data.status_poll_seconds : prolificOptionsSchema.shape.status_poll_seconds.parse(undefined);
  },

  serviceFee(amount, options) {
    const parsed = prolificOptionsSchema.partial().safeParse(options ?? {});
    const rate = parsed.success ? (parsed.data.service_fee_rate ?? DEFAULT_SERVICE_FEE_RATE) : DEFAULT_SERVICE_FEE_RATE;
    return Math.round(amount * rate * 10_000) / 10_000;
  },

  async setUpRun(ctx, { runId, options }) {
    const parsed = prolificOptionsSchema.parse(options ?? {});
    await guard(async () => {
      const { studyId, workspaceId } = await setUpStudy(ctx, runId, parsed);
      const api = client(ctx);
      const study = await api.getStudy(studyId);
      if (study.status === 'UNPUBLISHED') await api.transitionStudy(studyId, 'PUBLISH');
      await subscribeWebhook(ctx, workspaceId);
      ctx.log.info({ runId, studyId }, 'Prolific study published');
    });
  },

  async launchUnit(ctx, req) {
    return guard(async () => {
      const { studyId } = await studyOf(ctx, req.runId);
      // This unit is still `created`: the places are the units launched so far plus this one.
      const launched = await ctx.em.count(Unit, { taskRun: req.runId, providerUnitId: { $ne: null } });
      const api = client(ctx);
      const study = await api.getStudy(studyId);
      if (study.total_available_places < launched + 1) await api.setPlaces(studyId, launched + 1);
      return { providerUnitId: `${studyId}:${req.unitId}` };
    });
  },

  async expireUnit(ctx, req) {
    // A published study's places cannot go down: an expired unit's place stays, and a participant
    // taking it is refused `no_units_available` (asked to return the study).
    await recordOnce(ctx, PROLIFIC_PROVIDER, 'expireUnit', req.requestKey, req.unitId, { providerUnitId: req.providerUnitId });
  },

  async approveWork(ctx, req) {
    await guard(async () => {
      const { studyId } = await studyOf(ctx, await runOfUnit(ctx, req.unitId));
      const api = client(ctx);
      const submission = await submissionOf(api, studyId, req.workerId);
      if (!submission) throw new ProlificApiError(`participant ${req.workerId} has no submission in study ${studyId}`, null, false);
      if (REVIEWED.has(submission.status)) return;
      if (submission.status === 'ACTIVE') {
        throw new ProlificApiError(
          `participant ${req.workerId}'s Prolific submission is still active (they have not reached the completion URL yet); it is retried`,
          null,
          true,
        );
      }
      await transitionOnce(api, submission.id, () => api.approveSubmission(submission.id));
      await recordOnce(ctx, PROLIFIC_PROVIDER, 'approveWork', req.requestKey, req.unitId, { submissionId: submission.id });
    });
  },

  async rejectWork(ctx, req) {
    await guard(async () => {
      const runId = await runOfUnit(ctx, req.unitId);
      const { studyId } = await studyOf(ctx, runId);
      const run = await ctx.em.findOneOrFail(TaskRun, runId);
      const options = prolificOptionsSchema.parse(componentOptionsOf(run.config));
      const api = client(ctx);
      const submission = await submissionOf(api, studyId, req.workerId);
      if (!submission) throw new ProlificApiError(`participant ${req.workerId} has no submission in study ${studyId}`, null, false);
      if (submission.status === 'APPROVED') {
        // Asked before anything is recorded here (review/store.ts): the unit stays as it was.
        throw new ProlificApiError(
          `the submission of participant ${req.workerId} for unit ${req.unitId} was already approved at Prolific and paid; Prolific cannot reject it, and the unit was left as it was. Use soft-reject to record the work as poor`,
          null,
          false,
        );
      }
      if (REVIEWED.has(submission.status)) return;
      await transitionOnce(api, submission.id, () =>
        api.rejectSubmission(submission.id, { message: rejectionMessage(req.note), rejection_category: options.rejection_category }),
      );
      await recordOnce(ctx, PROLIFIC_PROVIDER, 'rejectWork', req.requestKey, req.unitId, { submissionId: submission.id });
    });
  },

  async payBonus(ctx, req) {
    return guard(() => payBonusOnce(ctx, req));
  },

  // Each reaches the participant groups of the runs still open (providers/prolific/groups.ts).
  async grantQualification(ctx, req) {
    const change = { grant: { name: req.qualification, value: req.value ?? 1 } };
    await guard(() => applyToRunGroups(ctx, () => client(ctx), PROLIFIC_PROVIDER, req.workerId, change));
  },
  async revokeQualification(ctx, req) {
    await guard(() => applyToRunGroups(ctx, () => client(ctx), PROLIFIC_PROVIDER, req.workerId, { revoke: req.qualification }));
  },
  async blockWorker(ctx, req) {
    await guard(() => applyToRunGroups(ctx, () => client(ctx), PROLIFIC_PROVIDER, req.workerId, { blocked: true }));
  },
  async unblockWorker(ctx, req) {
    await guard(() => applyToRunGroups(ctx, () => client(ctx), PROLIFIC_PROVIDER, req.workerId, { blocked: false }));
  },
};

function componentOptionsOf(config: unknown): unknown {
  const { type: _type, ...rest } = ((config as { provider?: Record<string, unknown> }).provider ?? {}) as Record<string, unknown>;
  return rest;
}

/** Prolific shows the message to the participant and wants 100+ characters: the note, explained. */
export function rejectionMessage(note: string | undefined): string {
  const base = note?.trim() ? `Your submission was rejected: ${note.trim()}.` : 'Your submission was rejected after review.';
  const more =
    ' It did not meet the requirements described in the study instructions. Contact us through Prolific if you think this is a mistake.';
  const message = base.length >= MIN_REJECTION_MESSAGE ? base : base + more;
  return message;
}
