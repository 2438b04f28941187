/**
 * A local Prolific: an HTTP server speaking the part of Prolific's public API v1 hitloop uses, so the
 * `prolific` provider can be tested (and tried by hand: `hitloop fake prolific --port N`) without a
 * real account. State lives in memory.
 *
 * API (token auth `Authorization: Token <token>`, errors as `{"error": {status, error_code, title, detail}}`):
 *   GET   /api/v1/users/me/
 *   GET   /api/v1/workspaces/{id}/balance/                 minor units (pence/cents)
 *   POST  /api/v1/studies/          GET /api/v1/studies/   GET|PATCH /api/v1/studies/{id}/
 *   POST  /api/v1/studies/{id}/transition/                 {action: PUBLISH|PAUSE|START|STOP}
 *   GET   /api/v1/studies/{id}/submissions/
 *   GET   /api/v1/submissions/{id}/
 *   POST  /api/v1/submissions/{id}/transition/             {action: APPROVE|REJECT, message, rejection_category}
 *   POST  /api/v1/submissions/bonus-payments/              {study_id, csv_bonuses}: sets a bonus up, pays nothing
 *   POST  /api/v1/bulk-bonus-payments/{id}/pay/            pays: NOT idempotent, a second call pays again
 *   GET   /api/v1/bulk-bonus-payments/{id}/                (not in Prolific's public API: see below)
 *   POST|GET /api/v1/participant-groups/                  {name, workspace_id | organisation_id, description, participant_ids}
 *   GET|PATCH|DELETE /api/v1/participant-groups/{id}/       PATCH participant_ids replaces the members
 *   GET|POST|DELETE /api/v1/participant-groups/{id}/participants/   {participant_ids}: add / remove members
 *         A study's `filters` may name groups (`participant_group_allowlist` / `participant_group_blocklist`,
 *         `selected_values`: group ids); a participant outside an allow list or inside a block list cannot
 *         take a place. Membership changes apply to published studies at once; their filters are frozen.
 *   POST  /api/v1/hooks/subscriptions/   GET /api/v1/hooks/subscriptions/
 * Participants (what Prolific's own site does for a participant; no token):
 *   GET   /fake/start?study=<id>&participant=<pid>   takes a place (submission ACTIVE), sets the session
 *                                                    cookie, redirects to the study URL with the ids filled in
 *   GET   /submissions/complete?cc=<code>            the completion redirect: the session's submission
 *                                                    goes AWAITING REVIEW
 *   POST  /fake/submissions/{id}/return   /fake/submissions/{id}/time-out   the participant leaves
 *                                                    (webhooks off: `webhooks: false`, or `fake.webhooksEnabled = false`)
 *   GET   /fake/ledger                               every payment made (rewards at approval, bonuses)
 *
 * Known differences from the real API: reading a bulk bonus payment back (`GET
 * /bulk-bonus-payments/{id}/`, with `status` SET_UP/PAID) is this fake's; the webhook secret is given
 * when the fake starts (Prolific creates one per workspace with `POST /hooks/secrets/`); the fee is a
 * flat `feeRate` of rewards and bonuses with no VAT; studies never fill from real participants.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
// Prolific's published list (docs: Submissions > rejection categories), shared with the client.
import { REJECTION_CATEGORIES } from '../../providers/prolific/client.ts';

export const STUDY_STATUSES = ['UNPUBLISHED', 'ACTIVE', 'PAUSED', 'AWAITING REVIEW', 'COMPLETED'] as const;
export type StudyStatus = (typeof STUDY_STATUSES)[number];
export const SUBMISSION_STATUSES = ['ACTIVE', 'AWAITING REVIEW', 'PROCESSING', 'APPROVED', 'REJECTED', 'RETURNED', 'TIMED-OUT'] as const;
export type SubmissionStatus = (typeof SUBMISSION_STATUSES)[number];

export interface FakeStudy {
  id: string;
  name: string;
  internal_name: string | null;
  description: string;
  external_study_url: string;
  prolific_id_option: string;
  completion_codes: Array<{ code: string; code_type: string }>;
  estimated_completion_time: number;
  maximum_allowed_time: number | null;
  reward: number;
  total_available_places: number;
  places_taken: number;
  device_compatibility: string[];
  eligibility_requirements: unknown[];
  filters: StudyFilter[];
  project: string | null;
  workspace: string;
  currency_code: string;
  status: StudyStatus;
  date_created: string;
}

/** A study filter; only the participant-group ones are enforced here. */
export interface StudyFilter {
  filter_id: string;
  selected_values?: string[];
}
export const ALLOWLIST_FILTER = 'participant_group_allowlist';
export const BLOCKLIST_FILTER = 'participant_group_blocklist';

export interface FakeParticipantGroup {
  id: string;
  name: string;
  description: string | null;
  workspace_id: string | null;
  organisation_id: string | null;
  /** Participant id -> when added. */
  participants: Map<string, string>;
  is_deleted: boolean;
}

export interface FakeSubmission {
  id: string;
  study_id: string;
  participant_id: string;
  status: SubmissionStatus;
  started_at: string;
  completed_at: string | null;
  entered_code: string | null;
  reward: number;
  rejection_category?: string;
  message?: string;
}

export interface FakeBulkBonus {
  id: string;
  study: string;
  amount: number;
  fees: number;
  vat: number;
  total_amount: number;
  status: 'SET_UP' | 'PAID';
  bonuses: Array<{ participant_id: string; amount: number }>;
}

/** One movement of money out of the workspace. */
export interface LedgerEntry {
  kind: 'reward' | 'bonus';
  /** The submission (reward) or bulk bonus payment (bonus). */
  ref: string;
  study: string;
  participant_id: string;
  /** Minor units. */
  amount: number;
  fees: number;
  at: string;
}

export interface FakeProlificOptions {
  port?: number;
  host?: string;
  /** The API token the fake accepts. */
  token?: string;
  workspaceId?: string;
  /** Minor units. */
  balance?: number;
  currency?: string;
  /** The fee on rewards and bonuses (Prolific charges about a third). */
  feeRate?: number;
  /** Signs webhook deliveries (X-Prolific-Request-Signature). */
  webhookSecret?: string;
  /** How long an approved or rejected submission stays PROCESSING. */
  processingMs?: number;
  /** Send webhooks (default true); off, a client learns of returns only by reading submissions. */
  webhooks?: boolean;
  /** Items per page of a list answer (Prolific pages its lists; `_links.next.href` names the next page). */
  pageSize?: number;
}

type Fault = { method: string; path: RegExp; status: number; times: number; hang?: boolean };

class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: unknown;
  readonly errorCode: number;
  constructor(status: number, title: string, detail: unknown, errorCode = 140000 + status) {
    super(title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errorCode = errorCode;
  }
}

const studyCreateSchema = z.object({
  name: z.string().min(1),
  internal_name: z.string().nullish(),
  description: z.string().min(1),
  external_study_url: z.url(),
  prolific_id_option: z.enum(['question', 'url_parameters', 'not_required']),
  completion_codes: z
    .array(z.object({ code: z.string().min(1), code_type: z.string().min(1), actions: z.array(z.unknown()).optional() }))
    .min(1),
  estimated_completion_time: z.int().min(1),
  maximum_allowed_time: z.int().min(1).nullish(),
  reward: z.int().min(1),
  total_available_places: z.int().min(1),
  device_compatibility: z.array(z.enum(['desktop', 'tablet', 'mobile'])).optional(),
  eligibility_requirements: z.array(z.unknown()).optional(),
  filters: z.array(z.looseObject({ filter_id: z.string().min(1), selected_values: z.array(z.string()).optional() })).optional(),
  project: z.string().nullish(),
  workspace: z.string().nullish(),
});
const studyPatchSchema = z.object({
  total_available_places: z.int().min(1).optional(),
  internal_name: z.string().optional(),
  filters: z.array(z.unknown()).optional(),
  eligibility_requirements: z.array(z.unknown()).optional(),
});
const studyTransitionSchema = z.object({ action: z.enum(['PUBLISH', 'PAUSE', 'START', 'STOP']) });
const submissionTransitionSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('APPROVE') }),
  z.object({
    action: z.literal('REJECT'),
    message: z.string().min(100, 'Ensure this field has at least 100 characters.'),
    rejection_category: z.enum(REJECTION_CATEGORIES),
  }),
]);
const bonusSetUpSchema = z.object({ study_id: z.string().min(1), csv_bonuses: z.string().min(1) });
const participantsSchema = z.object({ participant_ids: z.array(z.string().min(1)).min(1) });
const groupSchema = z
  .object({
    name: z.string().min(1),
    workspace_id: z.string().min(1).optional(),
    organisation_id: z.string().min(1).optional(),
    description: z.string().optional(),
    participant_ids: z.array(z.string().min(1)).optional(),
  })
  .refine((g) => g.workspace_id !== undefined || g.organisation_id !== undefined, {
    message: 'Either a workspace or organisation ID must be specified.',
    path: ['workspace_id'],
  });
const groupPatchSchema = z.object({ name: z.string().min(1).optional(), participant_ids: z.array(z.string().min(1)).optional() });
const hookSchema = z.object({ workspace_id: z.string().min(1), event_type: z.string().min(1), target_url: z.url() });

function zodDetail(error: z.ZodError): Record<string, string[]> {
  const detail: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const key = issue.path.join('.') || 'non_field_errors';
    (detail[key] ??= []).push(issue.message);
  }
  return detail;
}

export class FakeProlific {
  readonly studies = new Map<string, FakeStudy>();
  readonly submissions = new Map<string, FakeSubmission>();
  readonly bulkBonuses = new Map<string, FakeBulkBonus>();
  readonly groups = new Map<string, FakeParticipantGroup>();
  readonly hooks: Array<{ id: string; event_type: string; target_url: string; workspace_id: string }> = [];
  readonly ledger: LedgerEntry[] = [];
  /** Every API request, for tests: `POST /api/v1/...`. */
  readonly requests: string[] = [];
  readonly token: string;
  readonly workspaceId: string;
  readonly currency: string;
  readonly feeRate: number;
  readonly webhookSecret: string;
  balance: number;
  /** Whether status changes are sent to subscribed webhooks (tests switch them off to exercise polling). */
  webhooksEnabled: boolean;
  url = '';
  /** Awaited before each API request is handled (the chaos harness kills processes from here). */
  onRequest: ((method: string, path: string) => Promise<void> | void) | undefined;
  #server: Server | undefined;
  #faults: Fault[] = [];
  #processingMs: number;
  readonly #pageSize: number;
  #webhookDeliveries: Promise<void>[] = [];

  constructor(opts: FakeProlificOptions = {}) {
    this.token = opts.token ?? 'fake-prolific-token';
    this.workspaceId = opts.workspaceId ?? 'ws-fake';
    this.currency = opts.currency ?? 'GBP';
    this.feeRate = opts.feeRate ?? 1 / 3;
    this.balance = opts.balance ?? 100_000;
    this.webhookSecret = opts.webhookSecret ?? randomBytes(24).toString('base64url');
    this.#processingMs = opts.processingMs ?? 200;
    this.webhooksEnabled = opts.webhooks ?? true;
    this.#pageSize = opts.pageSize ?? 100;
  }

  /**
   * One page of a list, in Prolific's shape: `results`, `_links` (`next.href` null on the last page)
   * and `meta.count`. The page is `?page=N` (1-based); other query parameters stay in the links.
   */
  #page<T>(path: string, query: URLSearchParams, items: readonly T[]): { body: unknown } {
    const pages = Math.max(1, Math.ceil(items.length / this.#pageSize));
    const page = Number(query.get('page') ?? '1');
    if (!Number.isInteger(page) || page < 1) throw new ApiError(400, 'Invalid page', { page: ['A valid page number is required.'] });
    const href = (n: number | null): string | null => {
      if (n === null) return null;
      const q = new URLSearchParams(query);
      q.set('page', String(n));
      return `${this.apiUrl}${path}?${q.toString()}`;
    };
    return {
      body: {
        results: items.slice((page - 1) * this.#pageSize, page * this.#pageSize),
        _links: {
          self: { href: href(page), title: 'Current' },
          next: { href: href(page < pages ? page + 1 : null), title: 'Next' },
          previous: { href: href(page > 1 ? page - 1 : null), title: 'Previous' },
          last: { href: href(pages), title: 'Last' },
        },
        meta: { count: items.length },
      },
    };
  }

  get apiUrl(): string {
    return `${this.url}/api/v1`;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<this> {
    const server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    this.url = `http://${host}:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#webhookDeliveries);
    await new Promise<void>((resolve) => {
      if (!this.#server) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  /** The next `times` requests matching answer `status` (or never answer, with `hang`). */
  fail(method: string, path: RegExp, status: number, times = 1, hang = false): void {
    this.#faults.push({ method, path, status, times, hang });
  }

  /** Every injected fault still pending is dropped: the API answers normally again. */
  clearFaults(): void {
    this.#faults = [];
  }

  /** A participant takes a place: their submission and the study URL they are sent to. */
  startParticipant(studyId: string, participantId: string): { submission: FakeSubmission; url: string } {
    const study = this.studies.get(studyId);
    if (!study) throw new ApiError(404, 'Not found', `no study ${studyId}`);
    const existing = [...this.submissions.values()].find((s) => s.study_id === studyId && s.participant_id === participantId);
    if (existing) throw new ApiError(400, 'Already taken part', 'a participant takes part in a study once');
    if (study.status !== 'ACTIVE') throw new ApiError(400, 'Study not active', `study ${studyId} is ${study.status}`);
    if (this.#placesInUse(studyId) >= study.total_available_places) throw new ApiError(400, 'Study full', 'no places are available');
    if (!this.isEligible(study, participantId)) throw new ApiError(403, 'Not eligible', 'you are not eligible for this study');
    const submission: FakeSubmission = {
      id: randomBytes(12).toString('hex'),
      study_id: studyId,
      participant_id: participantId,
      status: 'ACTIVE',
      started_at: new Date().toISOString(),
      completed_at: null,
      entered_code: null,
      reward: study.reward,
    };
    this.submissions.set(submission.id, submission);
    const url = study.external_study_url
      .replaceAll('{{%PROLIFIC_PID%}}', encodeURIComponent(participantId))
      .replaceAll('{{%STUDY_ID%}}', encodeURIComponent(studyId))
      .replaceAll('{{%SESSION_ID%}}', encodeURIComponent(submission.id));
    return { submission, url };
  }

  /** The participant arrives at the completion URL with `code`. */
  complete(submissionId: string, code: string): FakeSubmission {
    const submission = this.#submission(submissionId);
    if (submission.status !== 'ACTIVE') throw new ApiError(400, 'Submission not active', `submission is ${submission.status}`);
    submission.status = 'AWAITING REVIEW';
    submission.completed_at = new Date().toISOString();
    submission.entered_code = code;
    this.#settleStudy(submission.study_id);
    return submission;
  }

  /** The participant returns the study, or runs out of time: their place is free again. */
  leave(submissionId: string, status: 'RETURNED' | 'TIMED-OUT'): FakeSubmission {
    const submission = this.#submission(submissionId);
    if (submission.status !== 'ACTIVE') throw new ApiError(400, 'Submission not active', `submission is ${submission.status}`);
    submission.status = status;
    this.#notify(submission);
    return submission;
  }

  /** Whether the study's participant-group filters let the participant in (evaluated now: groups are live). */
  isEligible(study: FakeStudy, participantId: string): boolean {
    const inAny = (f: StudyFilter) => (f.selected_values ?? []).some((id) => this.groups.get(id)?.participants.has(participantId));
    for (const f of study.filters) {
      if (f.filter_id === ALLOWLIST_FILTER && !inAny(f)) return false;
      if (f.filter_id === BLOCKLIST_FILTER && inAny(f)) return false;
    }
    return true;
  }

  /** Payments per (kind, ref): more than one means money moved twice. */
  paymentsByRef(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.ledger)
      counts.set(`${e.kind}:${e.ref}:${e.participant_id}`, (counts.get(`${e.kind}:${e.ref}:${e.participant_id}`) ?? 0) + 1);
    return counts;
  }

  #placesInUse(studyId: string): number {
    return [...this.submissions.values()].filter((s) => s.study_id === studyId && s.status !== 'RETURNED' && s.status !== 'TIMED-OUT')
      .length;
  }

  /** A study whose places are all taken and done flips to AWAITING REVIEW, and to COMPLETED once all are reviewed. */
  #settleStudy(studyId: string): void {
    const study = this.studies.get(studyId)!;
    if (study.status !== 'ACTIVE' && study.status !== 'AWAITING REVIEW') return;
    const used = [...this.submissions.values()].filter(
      (s) => s.study_id === studyId && s.status !== 'RETURNED' && s.status !== 'TIMED-OUT',
    );
    if (used.length < study.total_available_places || used.some((s) => s.status === 'ACTIVE')) return;
    study.status = used.every((s) => s.status === 'APPROVED' || s.status === 'REJECTED') ? 'COMPLETED' : 'AWAITING REVIEW';
  }

  #submission(id: string): FakeSubmission {
    const s = this.submissions.get(id);
    if (!s) throw new ApiError(404, 'Not found', `no submission ${id}`);
    return s;
  }

  #group(id: string): FakeParticipantGroup {
    const g = this.groups.get(id);
    if (!g || g.is_deleted) throw new ApiError(404, 'Not found', `no participant group ${id}`);
    return g;
  }

  #study(id: string): FakeStudy {
    const s = this.studies.get(id);
    if (!s) throw new ApiError(404, 'Not found', `no study ${id}`);
    return s;
  }

  #pay(entry: Omit<LedgerEntry, 'at' | 'fees'>): void {
    const fees = Math.round(entry.amount * this.feeRate);
    this.balance -= entry.amount + fees;
    this.ledger.push({ ...entry, fees, at: new Date().toISOString() });
  }

  /** Sends a signed `submission.status.change` to every subscribed webhook, the way Prolific does. */
  #notify(submission: FakeSubmission): void {
    if (!this.webhooksEnabled) return;
    for (const hook of this.hooks.filter((h) => h.event_type === 'submission.status.change')) {
      const body = JSON.stringify({
        event_type: 'submission.status.change',
        resource_id: submission.id,
        status: submission.status,
        participant_id: submission.participant_id,
        study_id: submission.study_id,
      });
      const timestamp = String(Math.floor(Date.now() / 1000));
      const signature = signWebhook(this.webhookSecret, timestamp, body);
      const delivery = fetch(hook.target_url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-prolific-request-signature': signature,
          'x-prolific-request-timestamp': timestamp,
        },
        body,
      }).then(
        () => undefined,
        () => undefined,
      );
      this.#webhookDeliveries.push(delivery);
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    try {
      const fault = this.#faults.find((f) => f.method === method && f.path.test(path) && f.times > 0);
      if (fault) {
        fault.times -= 1;
        this.requests.push(`${method} ${path} (fault ${fault.hang ? 'hang' : fault.status})`);
        if (fault.hang) return; // never answers: the client's timeout must fire
        throw new ApiError(fault.status, fault.status >= 500 ? 'Server error' : 'Request failed', 'injected fault');
      }
      if (path.startsWith('/fake/') || path === '/submissions/complete') return await this.#participantRoute(req, res, url);
      if (!path.startsWith('/api/v1/')) throw new ApiError(404, 'Not found', `nothing at ${path}`);
      this.requests.push(`${method} ${path}`);
      if (req.headers.authorization !== `Token ${this.token}`) {
        throw new ApiError(401, 'Not authenticated', 'Invalid token.', 401);
      }
      const body = method === 'POST' || method === 'PATCH' || method === 'DELETE' ? await readJson(req) : undefined;
      await this.onRequest?.(method, path);
      const result = this.#api(method, path.slice('/api/v1'.length), body, url.searchParams);
      json(res, result.status ?? 200, result.body);
    } catch (err) {
      if (err instanceof ApiError) {
        json(res, err.status, {
          error: {
            status: err.status,
            error_code: err.errorCode,
            title: err.title,
            detail: err.detail,
            additional_information: `/api/v1/errors/${err.errorCode}`,
            traceback: null,
            interactive: false,
          },
        });
      } else {
        json(res, 500, { error: { status: 500, error_code: 150000, title: 'Server error', detail: 'unexpected error' } });
      }
    }
  }

  #api(method: string, path: string, body: unknown, query: URLSearchParams): { status?: number; body: unknown } {
    let m: RegExpExecArray | null;
    const parse = <T>(schema: z.ZodType<T>): T => {
      const r = schema.safeParse(body ?? {});
      if (!r.success) throw new ApiError(400, 'Bad request', zodDetail(r.error));
      return r.data;
    };
    if (method === 'GET' && path === '/users/me/')
      return { body: { id: 'researcher-fake', email: 'researcher@example.org', currency_code: this.currency } };
    if (method === 'GET' && (m = /^\/workspaces\/([^/]+)\/balance\/$/.exec(path))) {
      if (m[1] !== this.workspaceId) throw new ApiError(404, 'Not found', `no workspace ${m[1]}`);
      return {
        body: {
          currency_code: this.currency,
          total_balance: this.balance,
          available_balance: this.balance,
          balance_breakdown: { rewards: this.balance, fees: 0, vat: 0 },
        },
      };
    }
    if (path === '/studies/' && method === 'POST') {
      const input = parse(studyCreateSchema);
      if (input.workspace && input.workspace !== this.workspaceId)
        throw new ApiError(400, 'Bad request', { workspace: ['Unknown workspace.'] });
      for (const f of input.filters ?? []) {
        if (f.filter_id !== ALLOWLIST_FILTER && f.filter_id !== BLOCKLIST_FILTER) continue;
        const unknown = (f.selected_values ?? []).filter((id) => !this.groups.get(id) || this.groups.get(id)!.is_deleted);
        if (unknown.length > 0 || (f.selected_values ?? []).length === 0)
          throw new ApiError(400, 'Bad request', { filters: [`${f.filter_id}: unknown participant group(s) ${unknown.join(', ') || '(none given)'}.`] });
      }
      const study: FakeStudy = {
        id: randomBytes(12).toString('hex'),
        name: input.name,
        internal_name: input.internal_name ?? null,
        description: input.description,
        external_study_url: input.external_study_url,
        prolific_id_option: input.prolific_id_option,
        completion_codes: input.completion_codes.map((c) => ({ code: c.code, code_type: c.code_type })),
        estimated_completion_time: input.estimated_completion_time,
        maximum_allowed_time: input.maximum_allowed_time ?? null,
        reward: input.reward,
        total_available_places: input.total_available_places,
        places_taken: 0,
        device_compatibility: input.device_compatibility ?? ['desktop', 'tablet', 'mobile'],
        eligibility_requirements: input.eligibility_requirements ?? [],
        filters: (input.filters ?? []).map((f) => ({ filter_id: f.filter_id, ...(f.selected_values ? { selected_values: f.selected_values } : {}) })),
        project: input.project ?? null,
        workspace: this.workspaceId,
        currency_code: this.currency,
        status: 'UNPUBLISHED',
        date_created: new Date().toISOString(),
      };
      this.studies.set(study.id, study);
      return { status: 201, body: this.#studyView(study) };
    }
    if (path === '/studies/' && method === 'GET') return this.#page(path, query, [...this.studies.values()].map((s) => this.#studyView(s)));
    if ((m = /^\/studies\/([^/]+)\/$/.exec(path))) {
      const study = this.#study(m[1]!);
      if (method === 'GET') return { body: this.#studyView(study) };
      if (method === 'PATCH') {
        const patch = parse(studyPatchSchema);
        if (study.status !== 'UNPUBLISHED' && (patch.filters !== undefined || patch.eligibility_requirements !== undefined)) {
          throw new ApiError(400, 'Bad request', {
            filters: ['The filters of a published study cannot be changed; change the members of its participant groups instead.'],
          });
        }
        if (patch.total_available_places !== undefined) {
          if (study.status !== 'UNPUBLISHED' && patch.total_available_places < study.total_available_places) {
            throw new ApiError(400, 'Bad request', {
              total_available_places: ['The number of places of a published study can only be increased.'],
            });
          }
          study.total_available_places = patch.total_available_places;
          if (study.status === 'AWAITING REVIEW') study.status = 'ACTIVE';
        }
        if (patch.internal_name !== undefined) study.internal_name = patch.internal_name;
        return { body: this.#studyView(study) };
      }
    }
    if (method === 'POST' && (m = /^\/studies\/([^/]+)\/transition\/$/.exec(path))) {
      const study = this.#study(m[1]!);
      const { action } = parse(studyTransitionSchema);
      const next: Record<string, [StudyStatus[], StudyStatus]> = {
        PUBLISH: [['UNPUBLISHED'], 'ACTIVE'],
        PAUSE: [['ACTIVE'], 'PAUSED'],
        START: [['PAUSED'], 'ACTIVE'],
        STOP: [['ACTIVE', 'PAUSED', 'AWAITING REVIEW'], 'AWAITING REVIEW'],
      };
      const [from, to] = next[action]!;
      if (!from.includes(study.status))
        throw new ApiError(400, 'Bad request', { action: [`A study that is ${study.status} cannot ${action}.`] });
      if (action === 'PUBLISH') {
        const cost = study.reward * study.total_available_places;
        if (cost + Math.round(cost * this.feeRate) > this.balance)
          throw new ApiError(400, 'Insufficient funds', 'Your workspace balance does not cover this study.');
      }
      study.status = to;
      return { body: this.#studyView(study) };
    }
    if (method === 'GET' && (m = /^\/studies\/([^/]+)\/submissions\/$/.exec(path))) {
      this.#study(m[1]!);
      return this.#page(path, query, [...this.submissions.values()].filter((s) => s.study_id === m![1]).map((s) => this.#submissionView(s)));
    }
    if (method === 'GET' && (m = /^\/submissions\/([^/]+)\/$/.exec(path))) return { body: this.#submissionView(this.#submission(m[1]!)) };
    if (method === 'POST' && (m = /^\/submissions\/([^/]+)\/transition\/$/.exec(path))) {
      const submission = this.#submission(m[1]!);
      const action = parse(submissionTransitionSchema);
      if (submission.status !== 'AWAITING REVIEW') {
        throw new ApiError(400, 'Bad request', {
          action: [`A submission that is ${submission.status} cannot be ${action.action === 'APPROVE' ? 'approved' : 'rejected'}.`],
        });
      }
      submission.status = 'PROCESSING';
      if (action.action === 'REJECT') {
        submission.rejection_category = action.rejection_category;
        submission.message = action.message;
      }
      const final = action.action === 'APPROVE' ? 'APPROVED' : 'REJECTED';
      if (final === 'APPROVED')
        this.#pay({
          kind: 'reward',
          ref: submission.id,
          study: submission.study_id,
          participant_id: submission.participant_id,
          amount: submission.reward,
        });
      setTimeout(() => {
        submission.status = final;
        this.#settleStudy(submission.study_id);
      }, this.#processingMs).unref();
      return { body: this.#submissionView(submission) };
    }
    if (method === 'POST' && path === '/submissions/bonus-payments/') {
      const input = parse(bonusSetUpSchema);
      this.#study(input.study_id);
      const bonuses: FakeBulkBonus['bonuses'] = [];
      for (const [i, line] of input.csv_bonuses.trim().split('\n').entries()) {
        const [pid, amount] = line.split(',').map((x) => x.trim());
        const value = Number(amount);
        if (!pid || !amount || !/^\d+(\.\d{1,2})?$/.test(amount) || value <= 0)
          throw new ApiError(400, 'Bad request', {
            csv_bonuses: [`Line ${i + 1}: expected "<participant id>,<amount>" with an amount like 1.50.`],
          });
        const took = [...this.submissions.values()].some((s) => s.study_id === input.study_id && s.participant_id === pid);
        if (!took)
          throw new ApiError(400, 'Bad request', { csv_bonuses: [`Line ${i + 1}: participant ${pid} has no submission in this study.`] });
        bonuses.push({ participant_id: pid, amount: Math.round(value * 100) });
      }
      const amount = bonuses.reduce((s, b) => s + b.amount, 0);
      const fees = Math.round(amount * this.feeRate);
      const bulk: FakeBulkBonus = {
        id: randomBytes(12).toString('hex'),
        study: input.study_id,
        amount,
        fees,
        vat: 0,
        total_amount: amount + fees,
        status: 'SET_UP',
        bonuses,
      };
      this.bulkBonuses.set(bulk.id, bulk);
      const { bonuses: _omit, status: _status, ...view } = bulk;
      return { status: 201, body: view };
    }
    if ((m = /^\/bulk-bonus-payments\/([^/]+)\/(pay\/)?$/.exec(path))) {
      const bulk = this.bulkBonuses.get(m[1]!);
      if (!bulk) throw new ApiError(404, 'Not found', `no bulk bonus payment ${m[1]}`);
      if (method === 'GET' && !m[2])
        return {
          body: {
            id: bulk.id,
            study: bulk.study,
            amount: bulk.amount,
            fees: bulk.fees,
            total_amount: bulk.total_amount,
            status: bulk.status,
          },
        };
      if (method === 'POST' && m[2]) {
        // Like Prolific's: not idempotent. Each call pays every bonus of the set-up again.
        for (const b of bulk.bonuses)
          this.#pay({ kind: 'bonus', ref: bulk.id, study: bulk.study, participant_id: b.participant_id, amount: b.amount });
        bulk.status = 'PAID';
        return { status: 202, body: 'The bonuses are being paid.' };
      }
    }
    if (path === '/participant-groups/' && method === 'POST') {
      const input = parse(groupSchema);
      if (input.workspace_id && input.workspace_id !== this.workspaceId)
        throw new ApiError(400, 'Bad request', { workspace_id: ['Unknown workspace.'] });
      const now = new Date().toISOString();
      const group: FakeParticipantGroup = {
        id: randomBytes(12).toString('hex'),
        name: input.name,
        description: input.description ?? null,
        workspace_id: input.workspace_id ?? null,
        organisation_id: input.organisation_id ?? null,
        participants: new Map((input.participant_ids ?? []).map((id) => [id, now])),
        is_deleted: false,
      };
      this.groups.set(group.id, group);
      return { status: 201, body: groupView(group) };
    }
    if (path === '/participant-groups/' && method === 'GET') {
      const workspace = query.get('workspace_id');
      const active = [...this.groups.values()].filter((g) => !g.is_deleted && (!workspace || g.workspace_id === workspace));
      return this.#page(path, query, active.map(groupView));
    }
    if ((m = /^\/participant-groups\/([^/]+)\/$/.exec(path))) {
      const group = this.#group(m[1]!);
      if (method === 'GET') return { body: groupView(group) };
      if (method === 'PATCH') {
        const patch = parse(groupPatchSchema);
        if (patch.name !== undefined) group.name = patch.name;
        if (patch.participant_ids !== undefined) {
          const now = new Date().toISOString();
          group.participants = new Map(patch.participant_ids.map((id) => [id, group.participants.get(id) ?? now]));
        }
        return { body: groupView(group) };
      }
      if (method === 'DELETE') {
        group.is_deleted = true;
        return { status: 204, body: '' };
      }
    }
    if ((m = /^\/participant-groups\/([^/]+)\/participants\/$/.exec(path))) {
      const group = this.#group(m[1]!);
      if (method === 'POST' || method === 'DELETE') {
        const { participant_ids } = parse(participantsSchema);
        const now = new Date().toISOString();
        for (const id of participant_ids) {
          if (method === 'DELETE') group.participants.delete(id);
          else if (!group.participants.has(id)) group.participants.set(id, now);
        }
      }
      const results = [...group.participants].map(([participant_id, datetime_created]) => ({ participant_id, datetime_created }));
      return { body: { results } };
    }
    if (path === '/hooks/subscriptions/' && method === 'POST') {
      const input = parse(hookSchema);
      const hook = { id: randomBytes(12).toString('hex'), ...input };
      this.hooks.push(hook);
      return { status: 201, body: hook };
    }
    if (path === '/hooks/subscriptions/' && method === 'GET') return this.#page(path, query, this.hooks);
    throw new ApiError(404, 'Not found', `no endpoint ${method} /api/v1${path}`);
  }

  async #participantRoute(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;
    if (method === 'GET' && url.pathname === '/fake/start') {
      const { submission, url: target } = this.startParticipant(
        url.searchParams.get('study') ?? '',
        url.searchParams.get('participant') ?? '',
      );
      res.writeHead(302, { location: target, 'set-cookie': `prolific_session=${submission.id}; Path=/; HttpOnly; SameSite=Lax` });
      res.end();
      return;
    }
    if (method === 'GET' && url.pathname === '/submissions/complete') {
      const session = /(?:^|;\s*)prolific_session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
      if (!session) throw new ApiError(400, 'No session', 'open the study from Prolific first');
      const s = this.complete(session, url.searchParams.get('cc') ?? '');
      const html = `<!doctype html><html><body data-state="complete"><h1>Submission complete</h1><p>Submission <code>${s.id}</code> is ${s.status}.</p></body></html>`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
    if (method === 'POST' && (m = /^\/fake\/submissions\/([^/]+)\/(return|time-out)$/.exec(url.pathname))) {
      return json(res, 200, this.#submissionView(this.leave(m[1]!, m[2] === 'return' ? 'RETURNED' : 'TIMED-OUT')));
    }
    if (method === 'GET' && url.pathname === '/fake/ledger') return json(res, 200, { balance: this.balance, payments: this.ledger });
    throw new ApiError(404, 'Not found', `nothing at ${url.pathname}`);
  }

  #studyView(s: FakeStudy): unknown {
    const places = this.#placesInUse(s.id);
    return { ...s, places_taken: places };
  }

  #submissionView(s: FakeSubmission): unknown {
    return { ...s, participant: s.participant_id };
  }
}

function groupView(g: FakeParticipantGroup): unknown {
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    workspace_id: g.workspace_id,
    organisation_id: g.organisation_id,
    participant_count: g.participants.size,
    is_deleted: g.is_deleted,
    feeder_studies: [],
  };
}

/** Prolific's webhook signature: base64 HMAC-SHA256 of timestamp + body with the workspace's secret. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret)
    .update(timestamp + body)
    .digest('base64');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'Bad request', 'JSON parse error - the body is not valid JSON.');
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  if (status === 204) {
    res.writeHead(204);
    res.end();
    return;
  }
  const body = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startFakeProlific(opts: FakeProlificOptions = {}): Promise<FakeProlific> {
  return new FakeProlific(opts).listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
}
