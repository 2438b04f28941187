/**
 * A crowd provider: where workers come from (docs/design.md §5): `mock`, `local`, later Prolific or MTurk.
 * Providers are called only from activities, and activities are retried after crashes and timeouts,
 * so EVERY operation must be idempotent per `requestKey`: a second call with the same key must not
 * act twice (no second unit launched, no second bonus paid) and must answer like the first. This is
 * the contract of MTurk's UniqueRequestToken; providers without such a token record the key
 * themselves (in the database, through `ctx.em`) before acting.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Settings } from '../config/settings.ts';
import type { Leaver } from './leavers.ts';

export interface ProviderContext {
  /** A forked entity manager for this call; commit what must survive a retry. */
  em: EntityManager;
  settings: Settings;
  log: Logger;
}

export interface SetUpRunRequest {
  runId: string;
  /** The run config's provider options (everything but `type`), validated by `optionsSchema`. */
  options: unknown;
}

export interface LaunchUnitRequest {
  runId: string;
  unitId: string;
  /** Pay for the unit, in the provider's currency. */
  reward: number;
  /** Where a worker does the unit (the gateway's task page). */
  taskUrl: string;
  requestKey: string;
}

export interface ExpireUnitRequest {
  runId: string;
  unitId: string;
  providerUnitId: string;
  requestKey: string;
}

export interface ReviewRequest {
  workerId: string;
  unitId: string;
  requestKey: string;
  /** Shown to the worker where the provider supports it. */
  note?: string;
}

export interface BonusRequest {
  workerId: string;
  unitId: string;
  amount: number;
  reason: string;
  requestKey: string;
}

export interface ReofferUnitRequest {
  runId: string;
  unitId: string;
  /** The unit's id at the provider (its launch answer). */
  providerUnitId: string;
  /** The agent that left the unit (one release per agent). */
  agentId: string;
  /** How it left. */
  reason: 'disconnect' | 'timeout' | 'returned' | 'partner_disconnect';
  requestKey: string;
}

export interface QualificationRequest {
  workerId: string;
  qualification: string;
  /** For grants; integer. */
  value?: number;
  requestKey: string;
}

export interface BlockRequest {
  workerId: string;
  reason?: string;
  requestKey: string;
}

export interface WorkerIdentityRequest {
  runId: string;
  /** The task link's query parameters, as the page sent them. */
  params: Readonly<Record<string, string>>;
  /** The secret of the settings, for providers whose links are signed. */
  secret: string;
  /** The gateway's settings, for providers that confirm a worker with their own API. */
  settings?: Partial<Settings>;
  log?: Logger;
}

export type WorkerIdentity =
  | {
      ok: true;
      providerWorkerId: string;
      /** The provider's id of the piece of work the page was opened from (MTurk: the assignment id), recorded with the agent (providers/agentSessions.ts). */
      session?: string;
    }
  | { ok: false; message: string };

export interface CrowdProvider {
  /** The name a run config uses (`provider: mock`). */
  readonly type: string;
  /**
   * The currency rewards and bonuses are paid in (for the cost preview of `hitloop validate`), unless
   * the run's provider options name one (`currency`).
   */
  readonly currency?: string;
  /** Schema of the provider's options in a run config (all keys beside `type`). */
  readonly optionsSchema: z.ZodType;
  /**
   * Who a worker opening a task link is, from the link's query parameters (as the provider puts
   * them there, signed where the provider signs them). Without it the gateway cannot register the
   * provider's workers. The gateway awaits it (a provider may ask its service, e.g. MTurk's GetAssignment).
   */
  identifyWorker?(request: WorkerIdentityRequest): WorkerIdentity | Promise<WorkerIdentity>;
  /** The provider's fee on a payment of `amount` (on top of it), for spend; `options` are the run's provider options. */
  serviceFee?(amount: number, options: unknown): number;
  /**
   * Sites that may show the task page in a frame (CSP `frame-ancestors` sources, e.g.
   * `https://worker.mturk.com` for MTurk's iframe). Absent: no site may frame it.
   */
  readonly frameAncestors?: readonly string[];
  /**
   * Workers who left the run's units at the provider without submitting (returned, timed out), as the
   * provider reports them now. The run asks every `leaversPollSeconds` while units are held: the
   * fallback for notifications (webhooks) that never arrived (docs/design.md §5). A read: safe to repeat.
   */
  leavers?(ctx: ProviderContext, req: { runId: string }): Promise<Leaver[]>;
  /** Seconds between two `leavers` polls of a run, from the run's provider options. */
  leaversPollSeconds?(options: unknown): number;
  /** Create whatever the provider needs for a run (a study, a HIT type). */
  setUpRun(ctx: ProviderContext, run: SetUpRunRequest): Promise<void>;
  /** Make one unit available to workers. */
  launchUnit(ctx: ProviderContext, req: LaunchUnitRequest): Promise<{ providerUnitId: string }>;
  /**
   * A unit came back to the pool (its agent disconnected, timed out or returned it): make sure a
   * worker can reach it again, for providers where the leaving worker may still hold the place the
   * unit was offered through (MTurk: their accepted assignment holds the HIT's slot). Answers the
   * unit's id at the provider from now on (a new one when the provider made a new place for it).
   * Absent: nothing to do.
   */
  reofferUnit?(ctx: ProviderContext, req: ReofferUnitRequest): Promise<{ providerUnitId: string }>;
  /**
   * The run has ended (completed, cancelled or failed): withdraw whatever of it workers could still
   * take at the provider (MTurk: HITs with a free slot). Called once at the end and retried after
   * crashes, so idempotent; the run's outcome does not depend on it. Absent: nothing to do.
   */
  closeRun?(ctx: ProviderContext, req: { runId: string }): Promise<void>;
  /** Withdraw a unit that is no longer wanted (never a completed one). */
  expireUnit(ctx: ProviderContext, req: ExpireUnitRequest): Promise<void>;
  approveWork(ctx: ProviderContext, req: ReviewRequest): Promise<void>;
  rejectWork(ctx: ProviderContext, req: ReviewRequest): Promise<void>;
  /** Pay a bonus; `providerRef` identifies the payment at the provider. Never pays twice for one requestKey. */
  payBonus(ctx: ProviderContext, req: BonusRequest): Promise<{ providerRef: string }>;
  grantQualification(ctx: ProviderContext, req: QualificationRequest): Promise<void>;
  revokeQualification(ctx: ProviderContext, req: QualificationRequest): Promise<void>;
  blockWorker(ctx: ProviderContext, req: BlockRequest): Promise<void>;
  unblockWorker(ctx: ProviderContext, req: BlockRequest): Promise<void>;
}
