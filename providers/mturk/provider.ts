/**
 * The `mturk` provider (docs/design.md §5): Amazon Mechanical Turk's Requester API through the
 * official client, with `sandbox: true` for the requester sandbox.
 *
 *   run    CreateHITType (title, description, keywords, reward, duration, auto-approval delay, the
 *          run's qualification requirements one to one, locale), after GetAccountBalance covers the
 *          run's worst case; hitloop qualifications are created at MTurk by name when missing.
 *   unit   CreateHITWithHITType (MaxAssignments 1, ExternalQuestion -> the task page) with
 *          UniqueRequestToken = the unit's launch key and RequesterAnnotation = the unit id, so a
 *          retried launch finds its HIT; expiry with UpdateExpirationForHIT.
 *   worker the task page gets assignmentId, hitId, workerId and turkSubmitTo; identifyWorker checks
 *          them with GetAssignment (identity.ts). A HIT is a slot: the run hands the worker whichever
 *          unit it decides, and review pays each unit through the assignment its agent's page was
 *          opened from (the agent's session, recorded by the gateway: assignments.ts).
 *   again  a unit released by a worker who still holds their assignment (disconnected, timed out, or
 *          returned it in hitloop only) is offered again: one more assignment on its HIT
 *          (CreateAdditionalAssignmentsForHIT, at most 9 per HIT so MTurk's fee stays 20 %), or a new
 *          HIT for the unit once its HIT has 9 (the full one is expired; the unit's HIT is the new one);
 *          both with a UniqueRequestToken of the release.
 *   end    when the run ends, every HIT of it not yet expired expires (ListHITs, by RequesterAnnotation):
 *          a re-offer's extra slot outlives its unit when another slot's worker completes it.
 *   review ApproveAssignment (OverrideRejection after a reject), RejectAssignment with feedback,
 *          SendBonus with UniqueRequestToken, qualifications, CreateWorkerBlock / DeleteWorkerBlock.
 *
 * What is recorded locally (provider_call rows, once per key): the run's HIT types, the MTurk
 * qualification type of each hitloop qualification, unit -> assignment bindings, and re-offers.
 */
import {
  ApproveAssignmentCommand,
  AssociateQualificationWithWorkerCommand,
  CreateAdditionalAssignmentsForHITCommand,
  CreateHITTypeCommand,
  CreateHITWithHITTypeCommand,
  CreateQualificationTypeCommand,
  CreateWorkerBlockCommand,
  DeleteWorkerBlockCommand,
  DisassociateQualificationFromWorkerCommand,
  GetAccountBalanceCommand,
  GetAssignmentCommand,
  GetHITCommand,
  ListHITsCommand,
  ListQualificationTypesCommand,
  type MTurkClient,
  NotifyWorkersCommand,
  type QualificationRequirement,
  RejectAssignmentCommand,
  SendBonusCommand,
  UpdateExpirationForHITCommand,
} from '@aws-sdk/client-mturk';
import { ApplicationFailure } from '@temporalio/activity';
import type { TaskRunConfig } from '../../config/taskRunConfig.ts';
import { ProviderCall, TaskRun, Unit, Worker } from '../../model/entities.ts';
import { agentSession } from '../agentSessions.ts';
import { recordOnce } from '../inHouse.ts';
import type { CrowdProvider, ProviderContext, ReofferUnitRequest } from '../types.ts';
import { submittedAssignmentOf } from './assignments.ts';
import { isCredentialError, isDuplicateRequest, isRequestError, mturkClient, mturkEndpoint, uniqueRequestToken } from './client.ts';
import { MTURK_FEE_RATE, MTURK_LARGE_HIT_ASSIGNMENTS } from './fees.ts';
import { SANDBOX_PARAM, identifyMTurkWorker } from './identity.ts';
import { type MTurkProviderOptions, WORKER_LOCALE_QUALIFICATION_TYPE_ID, mturkProviderOptionsSchema } from './options.ts';

export const MTURK_PROVIDER = 'mturk';

/** The sites MTurk shows a task page from (in an iframe), sandbox included. */
export const MTURK_WORKER_ORIGINS = [
  'https://worker.mturk.com',
  'https://www.mturk.com',
  'https://workersandbox.mturk.com',
  'https://sandbox.mturk.com',
] as const;


interface RunRecord {
  hitTypeId: string;
  reward: number;
  sandbox: boolean;
  lifetimeSeconds: number;
  hitType: Record<string, unknown>;
}

/** A refusal retrying cannot fix: the activity fails at once with this message. */
function refused(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/** Call MTurk; credential refusals and MTurk's RequestError become clear non-retryable failures. */
async function send<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isCredentialError(err)) {
      throw refused(
        'MTurkCredentials',
        `MTurk refused the AWS credentials while trying to ${what} (${(err as Error).name}). hitloop reads them from the AWS default chain only: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the worker and gateway processes, then retry`,
      );
    }
    if (isRequestError(err) && !isDuplicateRequest(err)) {
      throw refused('MTurkRequestError', `MTurk refused to ${what}: ${err.message}${err.TurkErrorCode ? ` (${err.TurkErrorCode})` : ''}`);
    }
    throw err;
  }
}

const dollars = (amount: number): string => amount.toFixed(2);

function externalQuestion(url: string): string {
  const safe = url.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"><ExternalURL>${safe}</ExternalURL><FrameHeight>0</FrameHeight></ExternalQuestion>`;
}

async function loadRun(ctx: ProviderContext, runId: string): Promise<{ config: TaskRunConfig; options: MTurkProviderOptions }> {
  const run = await ctx.em.findOne(TaskRun, runId);
  if (!run) throw refused('UnknownTaskRun', `task run ${runId} is not in the database`);
  const config = run.config as unknown as TaskRunConfig;
  const { type: _type, ...options } = config.provider;
  return { config, options: mturkProviderOptionsSchema.parse(options) };
}

async function runRecord(ctx: ProviderContext, runId: string): Promise<RunRecord> {
  const row = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'setUpRun', requestKey: `setup:${runId}` });
  if (!row) throw refused('MTurkRunNotSetUp', `run ${runId} has no MTurk HIT type yet (setUpRun did not finish)`);
  return row.payload as unknown as RunRecord;
}

/** The MTurk QualificationTypeId of a hitloop qualification: listed in the options, found by name, or created. */
async function qualificationTypeId(ctx: ProviderContext, mturk: MTurkClient, name: string, options?: MTurkProviderOptions): Promise<string> {
  const listed = options?.qualification_type_ids[name];
  if (listed) return listed;
  const known = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'qualificationType', requestKey: `qual:${name}` });
  if (known) return String((known.payload as { typeId: string }).typeId);
  const find = async (): Promise<string | undefined> => {
    const out = await send(`find qualification type ${name}`, () =>
      mturk.send(new ListQualificationTypesCommand({ Query: name, MustBeRequestable: false, MustBeOwnedByCaller: true, MaxResults: 100 })),
    );
    return out.QualificationTypes?.find((q) => q.Name === name)?.QualificationTypeId;
  };
  let typeId = await find();
  if (!typeId) {
    try {
      const created = await mturk.send(
        new CreateQualificationTypeCommand({ Name: name, Description: `hitloop qualification ${name}`, QualificationTypeStatus: 'Active' }),
      );
      typeId = created.QualificationType!.QualificationTypeId!;
    } catch (err) {
      // Created meanwhile by a retry or another process: MTurk refuses a second type with the name.
      typeId = await find();
      if (!typeId) await send(`create qualification type ${name}`, () => Promise.reject(err));
    }
  }
  const recorded = await recordOnce(ctx, MTURK_PROVIDER, 'qualificationType', `qual:${name}`, name, { typeId });
  return String(recorded.typeId);
}

async function qualificationRequirements(ctx: ProviderContext, mturk: MTurkClient, config: TaskRunConfig, options: MTurkProviderOptions): Promise<QualificationRequirement[]> {
  const requirements: QualificationRequirement[] = [];
  for (const requirement of config.qualifications) {
    requirements.push({
      QualificationTypeId: await qualificationTypeId(ctx, mturk, requirement.name, options),
      Comparator: requirement.comparator,
      ...('value' in requirement ? { IntegerValues: Array.isArray(requirement.value) ? requirement.value : [requirement.value] } : {}),
      ActionsGuarded: options.actions_guarded,
    });
  }
  if (options.locale) {
    requirements.push({
      QualificationTypeId: WORKER_LOCALE_QUALIFICATION_TYPE_ID,
      Comparator: options.locale.comparator,
      LocaleValues: options.locale.places.map((p) => ({ Country: p.country, ...(p.subdivision ? { Subdivision: p.subdivision } : {}) })),
      ActionsGuarded: options.actions_guarded,
    });
  }
  return requirements;
}

/** The HIT type of a run for a reward (a live change of task_reward needs a HIT type of its own). */
async function hitTypeFor(ctx: ProviderContext, mturk: MTurkClient, runId: string, reward: number): Promise<string> {
  const run = await runRecord(ctx, runId);
  if (dollars(run.reward) === dollars(reward)) return run.hitTypeId;
  const key = `hittype:${runId}:${dollars(reward)}`;
  const known = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'hitType', requestKey: key });
  if (known) return String((known.payload as { hitTypeId: string }).hitTypeId);
  const out = await send('create a HIT type', () => mturk.send(new CreateHITTypeCommand({ ...run.hitType, Reward: dollars(reward) } as never)));
  const recorded = await recordOnce(ctx, MTURK_PROVIDER, 'hitType', key, runId, { hitTypeId: out.HITTypeId! });
  return String(recorded.hitTypeId);
}

/** The HIT a launch made before a crash: the newest whose RequesterAnnotation is the unit id (a re-offered unit may have several). */
async function findHitOfUnit(mturk: MTurkClient, unitId: string): Promise<string | undefined> {
  let NextToken: string | undefined;
  let newest: { HITId?: string; CreationTime?: Date } | undefined;
  do {
    const page = await send('list HITs', () => mturk.send(new ListHITsCommand({ MaxResults: 100, NextToken })));
    for (const hit of page.HITs ?? []) {
      if (hit.RequesterAnnotation === unitId && (!newest || (hit.CreationTime?.getTime() ?? 0) >= (newest.CreationTime?.getTime() ?? 0))) newest = hit;
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return newest?.HITId;
}

/** Create a HIT for a unit, once per token; a retry after a crash finds the HIT it made. */
async function createHitOnce(
  ctx: ProviderContext,
  mturk: MTurkClient,
  hit: { unitId: string; HITTypeId: string; question: string; lifetimeSeconds: number; token: string },
): Promise<string> {
  try {
    const out = await send('create a HIT', () =>
      mturk.send(
        new CreateHITWithHITTypeCommand({
          HITTypeId: hit.HITTypeId,
          MaxAssignments: 1,
          LifetimeInSeconds: Math.min(Math.max(30, hit.lifetimeSeconds), 31_536_000),
          Question: hit.question,
          RequesterAnnotation: hit.unitId,
          UniqueRequestToken: uniqueRequestToken(hit.token),
        }),
      ),
    );
    return out.HIT!.HITId!;
  } catch (err) {
    if (!isDuplicateRequest(err)) throw err;
    // Made before a crash: the token was used, so the HIT exists; find it by its annotation.
    const hitId = await findHitOfUnit(mturk, hit.unitId);
    if (!hitId) throw refused('MTurkLostHit', `MTurk says the HIT of unit ${hit.unitId} (request ${hit.token}) was already made, but no HIT carries its annotation`);
    ctx.log.info({ unitId: hit.unitId, hitId }, 'MTurk HIT found for a retried request');
    return hitId;
  }
}

/**
 * Whether the worker who left a unit still holds a slot of the run at MTurk: their assignment (the
 * agent's session) exists, accepted or submitted. Returned or abandoned at MTurk, it is gone and its
 * HIT has the slot free again. Unknown session: assume held (one slot too many beats a unit no one can reach).
 */
async function slotStillHeld(ctx: ProviderContext, mturk: MTurkClient, agentId: string): Promise<boolean> {
  const assignmentId = await agentSession(ctx.em, MTURK_PROVIDER, agentId);
  if (!assignmentId) return true;
  try {
    await mturk.send(new GetAssignmentCommand({ AssignmentId: assignmentId }));
    return true;
  } catch (err) {
    if (isCredentialError(err) || !isRequestError(err)) return send('read an assignment', () => Promise.reject(err));
    return false;
  }
}

/**
 * Offer a released unit again (see the header): one more assignment on its HIT, or a new HIT once
 * that one has 9; the answer is the unit's HIT from now on. Recorded once per release (agent).
 */
async function reofferUnit(ctx: ProviderContext, req: ReofferUnitRequest): Promise<{ providerUnitId: string }> {
  const key = `reoffer:${req.agentId}`;
  const done = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'reofferUnit', requestKey: key });
  if (done) return { providerUnitId: String((done.payload as { hitId: string }).hitId) };
  const run = await runRecord(ctx, req.runId);
  const mturk = mturkClient(run.sandbox);
  let outcome: Record<string, unknown>;
  if (!(await slotStillHeld(ctx, mturk, req.agentId))) {
    outcome = { how: 'slot already free', hitId: req.providerUnitId };
  } else {
    const hitId = req.providerUnitId;
    const { HIT: current } = await send(`read HIT ${hitId}`, () => mturk.send(new GetHITCommand({ HITId: hitId })));
    if ((current?.MaxAssignments ?? 1) + 1 < MTURK_LARGE_HIT_ASSIGNMENTS && current?.HITStatus !== 'Disposed') {
      try {
        await send(`add an assignment to HIT ${hitId}`, () =>
          mturk.send(new CreateAdditionalAssignmentsForHITCommand({ HITId: hitId, NumberOfAdditionalAssignments: 1, UniqueRequestToken: uniqueRequestToken(key) })),
        );
      } catch (err) {
        // Added before a crash: MTurk refuses the token again, and the assignment stands.
        if (!isDuplicateRequest(err)) throw err;
      }
      outcome = { how: 'one more assignment', hitId };
    } else {
      // A HIT made with fewer than 10 assignments never gets a 10th (MTurk refuses; 10+ would cost 40 %): a new HIT.
      const newHit = await createHitOnce(ctx, mturk, {
        unitId: req.unitId,
        HITTypeId: current!.HITTypeId!,
        question: current!.Question!,
        lifetimeSeconds: run.lifetimeSeconds,
        token: `launch:${req.unitId}:again:${req.agentId}`,
      });
      outcome = { how: 'new HIT', hitId: newHit, previousHitId: hitId };
      // The full HIT takes no one new; assignments already accepted on it can still be submitted.
      await expireHit(ctx, mturk, hitId);
    }
  }
  const recorded = await recordOnce(ctx, MTURK_PROVIDER, 'reofferUnit', key, req.agentId, { ...outcome, unitId: req.unitId, reason: req.reason });
  ctx.log.info({ unitId: req.unitId, agentId: req.agentId, ...outcome }, 'MTurk unit offered again');
  return { providerUnitId: String(recorded.hitId) };
}

/** Expire a HIT now: it takes no one new; assignments already accepted on it can still be submitted. */
async function expireHit(ctx: ProviderContext, mturk: MTurkClient, hitId: string): Promise<void> {
  try {
    await mturk.send(new UpdateExpirationForHITCommand({ HITId: hitId, ExpireAt: new Date(0) }));
  } catch (err) {
    // A HIT MTurk already ended or disposed of needs nothing more.
    if (!isRequestError(err)) await send('expire a HIT', () => Promise.reject(err));
    ctx.log.info({ hitId, reason: (err as Error).message }, 'MTurk HIT not expired (already over)');
  }
}

/**
 * The run has ended: expire each of its HITs not expired yet. HITs are slots of the run, not of a
 * unit, so this is the one moment a slot is known to be of no use (docs/design.md §5). Not only the
 * assignable ones: a HIT whose slots are all taken takes workers again when an accepted assignment is
 * returned or abandoned. One pass over the account's HITs (ListHITs has no filter); a HIT is the
 * run's when its RequesterAnnotation is one of the run's units, which also finds a HIT whose launch
 * was cut short before it was recorded. A retry skips what an earlier attempt expired.
 */
async function closeRun(ctx: ProviderContext, req: { runId: string }): Promise<void> {
  const setUp = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'setUpRun', requestKey: `setup:${req.runId}` });
  // No HIT type, so no HIT: the run ended before its setup at MTurk.
  if (!setUp) return;
  const mturk = mturkClient((setUp.payload as unknown as RunRecord).sandbox);
  let expired = 0;
  let NextToken: string | undefined;
  do {
    const page = await send('list HITs', () => mturk.send(new ListHITsCommand({ MaxResults: 100, NextToken })));
    const now = Date.now();
    const open = (page.HITs ?? []).filter(
      (hit) => hit.HITId && hit.RequesterAnnotation && hit.HITStatus !== 'Disposed' && (hit.Expiration?.getTime() ?? Number.POSITIVE_INFINITY) > now,
    );
    if (open.length > 0) {
      const units = await ctx.em.find(Unit, { taskRun: req.runId, id: { $in: open.map((hit) => hit.RequesterAnnotation!) } }, { fields: ['id'] });
      const ours = new Set(units.map((unit) => unit.id));
      for (const hit of open) {
        if (!ours.has(hit.RequesterAnnotation!)) continue;
        await expireHit(ctx, mturk, hit.HITId!);
        expired += 1;
      }
    }
    NextToken = page.NextToken;
  } while (NextToken);
  ctx.log.info({ runId: req.runId, expired }, 'MTurk HITs of the ended run expired');
}

async function sandboxOfUnit(ctx: ProviderContext, unitId: string): Promise<boolean> {
  const unit = await ctx.em.findOne(Unit, unitId, { fields: ['taskRun'] });
  if (!unit) throw refused('UnknownUnit', `unit ${unitId} is not in the database`);
  return (await runRecord(ctx, unit.taskRun.id)).sandbox;
}

/**
 * Whether a worker-level operation (qualification, block) goes to the sandbox: the sandbox has
 * workers of its own, so it follows the worker's latest MTurk run (HITLOOP_MTURK_SANDBOX=1 for a
 * worker who has none yet).
 */
async function sandboxOfWorker(ctx: ProviderContext, workerId: string): Promise<boolean> {
  const worker = await ctx.em.findOne(Worker, { provider: MTURK_PROVIDER, providerWorkerId: workerId }, { fields: ['id'] });
  const unit = worker ? await ctx.em.findOne(Unit, { worker: worker.id }, { fields: ['taskRun'], orderBy: { assignedAt: 'desc' } }) : null;
  if (unit) {
    const row = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'setUpRun', requestKey: `setup:${unit.taskRun.id}` });
    if (row) return (row.payload as unknown as RunRecord).sandbox;
  }
  return process.env.HITLOOP_MTURK_SANDBOX === '1';
}

export const mturkProvider: CrowdProvider = {
  type: MTURK_PROVIDER,
  currency: 'USD',
  optionsSchema: mturkProviderOptionsSchema,

  get frameAncestors(): string[] {
    const origins: string[] = [...MTURK_WORKER_ORIGINS];
    const endpoint = mturkEndpoint(false);
    if (endpoint !== 'https://mturk-requester.us-east-1.amazonaws.com') origins.push(new URL(endpoint).origin);
    return origins;
  },

  serviceFee(amount: number) {
    return Math.round(amount * MTURK_FEE_RATE * 10_000) / 10_000;
  },

  identifyWorker: identifyMTurkWorker,

  async setUpRun(ctx, { runId }) {
    const previous = await ctx.em.findOne(ProviderCall, { provider: MTURK_PROVIDER, operation: 'setUpRun', requestKey: `setup:${runId}` });
    if (previous) return;
    const { config, options } = await loadRun(ctx, runId);
    const mturk = mturkClient(options.sandbox);

    const units = await ctx.em.count(Unit, { taskRun: runId });
    const worstCase = units * config.task_reward * (1 + MTURK_FEE_RATE);
    const limit = config.max_spend === undefined ? worstCase : Math.min(worstCase, config.max_spend);
    const balance = Number((await send('read the account balance', () => mturk.send(new GetAccountBalanceCommand({})))).AvailableBalance ?? 0);
    if (balance < limit) {
      throw refused(
        'MTurkBalanceTooLow',
        `the MTurk account${options.sandbox ? ' (sandbox)' : ''} has $${dollars(balance)}, less than this run's worst case of $${dollars(limit)} (${units} units at $${dollars(config.task_reward)} plus MTurk's ${MTURK_FEE_RATE * 100} % fee${config.max_spend === undefined ? '' : `, capped by max_spend`}); add funds or lower task_reward / max_spend`,
      );
    }

    const hitType = {
      Title: (config.task_title ?? config.task_name).slice(0, 128),
      Description: (config.task_description ?? config.task_title ?? config.task_name).slice(0, 2000),
      Keywords: options.keywords ?? (config.task_tags ?? []).join(', '),
      AssignmentDurationInSeconds: Math.max(30, config.assignment_duration_seconds),
      AutoApprovalDelayInSeconds: options.auto_approval_delay_seconds,
      QualificationRequirements: await qualificationRequirements(ctx, mturk, config, options),
    };
    const out = await send('create the HIT type', () => mturk.send(new CreateHITTypeCommand({ ...hitType, Reward: dollars(config.task_reward) })));
    const record: RunRecord = {
      hitTypeId: out.HITTypeId!,
      reward: config.task_reward,
      sandbox: options.sandbox,
      lifetimeSeconds: config.task_lifetime_seconds,
      hitType,
    };
    await recordOnce(ctx, MTURK_PROVIDER, 'setUpRun', `setup:${runId}`, runId, record as unknown as Record<string, unknown>);
    ctx.log.info({ runId, hitTypeId: out.HITTypeId, sandbox: options.sandbox }, 'MTurk HIT type ready');
  },

  async launchUnit(ctx, req) {
    const run = await runRecord(ctx, req.runId);
    const mturk = mturkClient(run.sandbox);
    const HITTypeId = await hitTypeFor(ctx, mturk, req.runId, req.reward);
    const url = new URL(req.taskUrl);
    if (run.sandbox) url.searchParams.set(SANDBOX_PARAM, 'sandbox');
    const hitId = await createHitOnce(ctx, mturk, {
      unitId: req.unitId,
      HITTypeId,
      question: externalQuestion(url.toString()),
      lifetimeSeconds: run.lifetimeSeconds,
      token: req.requestKey,
    });
    return { providerUnitId: hitId };
  },

  reofferUnit,

  async expireUnit(ctx, req) {
    await expireHit(ctx, mturkClient((await runRecord(ctx, req.runId)).sandbox), req.providerUnitId);
  },

  closeRun,

  async approveWork(ctx, req) {
    const mturk = mturkClient(await sandboxOfUnit(ctx, req.unitId));
    const Assignment = await submittedAssignmentOf(ctx, mturk, req.unitId, req.workerId);
    const assignmentId = Assignment.AssignmentId!;
    if (Assignment.AssignmentStatus === 'Approved') return;
    try {
      await mturk.send(
        new ApproveAssignmentCommand({
          AssignmentId: assignmentId,
          ...(req.note ? { RequesterFeedback: req.note.slice(0, 1024) } : {}),
          OverrideRejection: Assignment.AssignmentStatus === 'Rejected',
        }),
      );
    } catch (err) {
      // Approved meanwhile (a retry after a timeout, or auto-approval): the approve stands.
      const now = await send('read an assignment', () => mturk.send(new GetAssignmentCommand({ AssignmentId: assignmentId })));
      if (now.Assignment?.AssignmentStatus !== 'Approved') await send(`approve assignment ${assignmentId}`, () => Promise.reject(err));
    }
  },

  async rejectWork(ctx, req) {
    const mturk = mturkClient(await sandboxOfUnit(ctx, req.unitId));
    const Assignment = await submittedAssignmentOf(ctx, mturk, req.unitId, req.workerId);
    const assignmentId = Assignment.AssignmentId!;
    if (Assignment.AssignmentStatus === 'Rejected') return;
    if (Assignment.AssignmentStatus === 'Approved') {
      throw refused(
        'MTurkAlreadyApproved',
        `assignment ${assignmentId} of unit ${req.unitId} was already approved at MTurk (auto-approval or an earlier approve) and its reward paid; MTurk cannot reject it, and the unit was left as it was. Use soft-reject to record the work as poor`,
      );
    }
    await send(`reject assignment ${assignmentId}`, () =>
      mturk.send(new RejectAssignmentCommand({ AssignmentId: assignmentId, RequesterFeedback: (req.note ?? 'Your work did not meet the task\'s requirements.').slice(0, 1024) })),
    );
  },

  async payBonus(ctx, req) {
    if (Math.round(req.amount * 100) !== Math.round(req.amount * 10_000) / 100) {
      throw refused('MTurkBonusAmount', `MTurk pays whole cents; a bonus of ${req.amount} has more than 2 decimals`);
    }
    const mturk = mturkClient(await sandboxOfUnit(ctx, req.unitId));
    const assignmentId = (await submittedAssignmentOf(ctx, mturk, req.unitId, req.workerId)).AssignmentId!;
    const token = uniqueRequestToken(`bonus:${req.requestKey}`);
    try {
      await send('send a bonus', () =>
        mturk.send(
          new SendBonusCommand({ WorkerId: req.workerId, AssignmentId: assignmentId, BonusAmount: dollars(req.amount), Reason: req.reason.slice(0, 4096) || 'bonus', UniqueRequestToken: token }),
        ),
      );
    } catch (err) {
      // Paid before a crash: MTurk refuses the token again, and the bonus stands.
      if (!isDuplicateRequest(err)) throw err;
    }
    return { providerRef: `${assignmentId}/${token}` };
  },

  async grantQualification(ctx, req) {
    const mturk = mturkClient(await sandboxOfWorker(ctx, req.workerId));
    const typeId = await qualificationTypeId(ctx, mturk, req.qualification);
    await send(`grant ${req.qualification}`, () =>
      mturk.send(new AssociateQualificationWithWorkerCommand({ QualificationTypeId: typeId, WorkerId: req.workerId, IntegerValue: req.value ?? 1, SendNotification: false })),
    );
  },

  async revokeQualification(ctx, req) {
    const mturk = mturkClient(await sandboxOfWorker(ctx, req.workerId));
    const typeId = await qualificationTypeId(ctx, mturk, req.qualification);
    await send(`revoke ${req.qualification}`, () =>
      mturk.send(new DisassociateQualificationFromWorkerCommand({ QualificationTypeId: typeId, WorkerId: req.workerId, Reason: 'revoked by the requester' })),
    );
  },

  async blockWorker(ctx, req) {
    const mturk = mturkClient(await sandboxOfWorker(ctx, req.workerId));
    await send(`block worker ${req.workerId}`, () =>
      mturk.send(new CreateWorkerBlockCommand({ WorkerId: req.workerId, Reason: req.reason?.slice(0, 1024) || 'blocked by the requester' })),
    );
  },

  async unblockWorker(ctx, req) {
    const mturk = mturkClient(await sandboxOfWorker(ctx, req.workerId));
    await send(`unblock worker ${req.workerId}`, () => mturk.send(new DeleteWorkerBlockCommand({ WorkerId: req.workerId, Reason: req.reason?.slice(0, 1024) })));
  },
};

/** Send a message to workers by email through MTurk (NotifyWorkers: at most 100 workers a call). */
export async function notifyMTurkWorkers(sandbox: boolean, workerIds: readonly string[], subject: string, message: string): Promise<void> {
  const mturk = mturkClient(sandbox);
  for (let i = 0; i < workerIds.length; i += 100) {
    await send('notify workers', () => mturk.send(new NotifyWorkersCommand({ WorkerIds: workerIds.slice(i, i + 100), Subject: subject, MessageText: message })));
  }
}
