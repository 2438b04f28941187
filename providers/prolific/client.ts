/**
 * A small client for Prolific's public API v1 (https://docs.prolific.com/api-reference): only the
 * calls the `prolific` provider makes. Answers are validated with zod; errors say what Prolific
 * answered (never the token). Safe calls (reads, and writes that set an absolute value) are retried
 * with backoff on 5xx, 429 and timeouts; calls that would act twice (creating a study, paying) are
 * made once and their outcome left to the caller, which records what it did first.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { ProlificSettings } from './settings.ts';

export const REJECTION_CATEGORIES = [
  'TOO_QUICKLY',
  'TOO_SLOWLY',
  'FAILED_INSTRUCTIONS',
  'INCOMP_LONGITUDINAL',
  'FAILED_CHECK',
  'LOW_EFFORT',
  'MALINGERING',
  'NO_CODE',
  'BAD_CODE',
  'NO_DATA',
  'UNSUPP_DEVICE',
  'OTHER',
] as const;
export type RejectionCategory = (typeof REJECTION_CATEGORIES)[number];
/** Prolific refuses a rejection whose message is shorter. */
export const MIN_REJECTION_MESSAGE = 100;

/** Prolific answered with an error, or could not be reached. `retryable` says whether asking again may help. */
export class ProlificApiError extends Error {
  override name = 'ProlificApiError';
  readonly status: number | null;
  readonly retryable: boolean;
  constructor(message: string, status: number | null, retryable: boolean) {
    super(message);
    this.status = status;
    this.retryable = retryable;
  }
}

export const studySchema = z.looseObject({
  id: z.string(),
  internal_name: z.string().nullish(),
  status: z.string(),
  total_available_places: z.number(),
  reward: z.number(),
  external_study_url: z.string().optional(),
  completion_codes: z.array(z.looseObject({ code: z.string(), code_type: z.string() })).optional(),
});
export type ProlificStudy = z.infer<typeof studySchema>;

export const submissionSchema = z
  .looseObject({
    id: z.string(),
    study_id: z.string(),
    status: z.string(),
    participant: z.string().optional(),
    participant_id: z.string().optional(),
  })
  .transform((s) => ({ ...s, participant: s.participant ?? s.participant_id ?? '' }));
export type ProlificSubmission = z.infer<typeof submissionSchema>;

/** A page of a list: Prolific pages its lists and names the next page in `_links.next.href` (null on the last). */
const listOf = <T extends z.ZodType>(item: T) =>
  z.looseObject({
    results: z.array(item),
    _links: z.looseObject({ next: z.looseObject({ href: z.string().nullable() }).optional() }).optional(),
  });
/** Pages followed before a list is called endless (100 per page: a million items). */
const MAX_PAGES = 10_000;
const balanceSchema = z.looseObject({ currency_code: z.string(), available_balance: z.number() });
const bulkBonusSchema = z.looseObject({
  id: z.string(),
  amount: z.number(),
  fees: z.number(),
  total_amount: z.number(),
  status: z.string().optional(),
});
export type ProlificBulkBonus = z.infer<typeof bulkBonusSchema>;
const groupSchema = z.looseObject({ id: z.string(), name: z.string().nullish() });
const hookSchema = z.looseObject({ id: z.string(), event_type: z.string(), target_url: z.string() });

export interface StudyDraft {
  name: string;
  internal_name: string;
  description: string;
  external_study_url: string;
  prolific_id_option: 'url_parameters';
  completion_codes: Array<{ code: string; code_type: 'COMPLETED'; actions: Array<{ action: 'MANUALLY_REVIEW' }> }>;
  estimated_completion_time: number;
  maximum_allowed_time: number;
  reward: number;
  total_available_places: number;
  device_compatibility: string[];
  eligibility_requirements: unknown[];
  /** Prolific's study filters; hitloop adds its run's participant groups (`participant_group_allowlist` / `_blocklist`). */
  filters?: Array<{ filter_id: string; selected_values: string[] }>;
  workspace?: string;
  project?: string;
}

const rejectionSchema = z.object({
  message: z
    .string()
    .min(
      MIN_REJECTION_MESSAGE,
      `a rejection message must be at least ${MIN_REJECTION_MESSAGE} characters (Prolific shows it to the participant)`,
    ),
  rejection_category: z.enum(REJECTION_CATEGORIES, `must be one of ${REJECTION_CATEGORIES.join(', ')}`),
});

export interface ProlificClientOptions {
  /** Per request. */
  timeoutMs?: number;
  /** Attempts of a safe call (first included). */
  attempts?: number;
  /** First backoff; doubles each time. */
  backoffMs?: number;
}

export class ProlificClient {
  readonly #settings: ProlificSettings;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #backoffMs: number;

  constructor(settings: ProlificSettings, opts: ProlificClientOptions = {}) {
    this.#settings = settings;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#attempts = opts.attempts ?? 4;
    this.#backoffMs = opts.backoffMs ?? 250;
  }

  workspaceBalance(workspaceId: string) {
    return this.#safe('GET', `/workspaces/${enc(workspaceId)}/balance/`, undefined, balanceSchema);
  }

  /** Not retried: a second call would create a second draft. Callers look for their draft first. */
  createStudy(draft: StudyDraft) {
    return this.#once('POST', '/studies/', draft, studySchema);
  }

  async listStudies(): Promise<ProlificStudy[]> {
    return this.#all('/studies/', studySchema);
  }

  getStudy(id: string) {
    return this.#safe('GET', `/studies/${enc(id)}/`, undefined, studySchema);
  }

  /** Sets the number of places (an absolute value: safe to repeat). */
  setPlaces(id: string, places: number) {
    return this.#safe('PATCH', `/studies/${enc(id)}/`, { total_available_places: places }, studySchema);
  }

  transitionStudy(id: string, action: 'PUBLISH' | 'PAUSE' | 'START' | 'STOP') {
    return this.#once('POST', `/studies/${enc(id)}/transition/`, { action }, studySchema);
  }

  async studySubmissions(studyId: string): Promise<ProlificSubmission[]> {
    return this.#all(`/studies/${enc(studyId)}/submissions/`, submissionSchema);
  }

  getSubmission(id: string) {
    return this.#safe('GET', `/submissions/${enc(id)}/`, undefined, submissionSchema);
  }

  approveSubmission(id: string) {
    return this.#once('POST', `/submissions/${enc(id)}/transition/`, { action: 'APPROVE' }, submissionSchema);
  }

  /** Checks Prolific's rules before calling: a category and a message of 100+ characters. */
  rejectSubmission(id: string, rejection: { message: string; rejection_category: string }) {
    const checked = rejectionSchema.safeParse(rejection);
    if (!checked.success) {
      const why = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      return Promise.reject(new ProlificApiError(`the rejection was not sent to Prolific: ${why}`, null, false));
    }
    return this.#once('POST', `/submissions/${enc(id)}/transition/`, { action: 'REJECT', ...checked.data }, submissionSchema);
  }

  /** Sets up a bulk bonus payment (no money moves). `amount` in the currency's major unit. */
  setUpBonus(studyId: string, participantId: string, amount: number) {
    return this.#once(
      'POST',
      '/submissions/bonus-payments/',
      { study_id: studyId, csv_bonuses: `${participantId},${amount.toFixed(2)}` },
      bulkBonusSchema,
    );
  }

  /** Pays a set-up bonus. Prolific documents this call as NOT idempotent: a second call pays again. */
  async payBonus(bulkId: string): Promise<void> {
    await this.#request('POST', `/bulk-bonus-payments/${enc(bulkId)}/pay/`, {});
  }

  /** Reads a bulk bonus payment back (its `status`: SET_UP until paid). */
  getBonus(bulkId: string) {
    return this.#safe('GET', `/bulk-bonus-payments/${enc(bulkId)}/`, undefined, bulkBonusSchema);
  }

  /** Not retried: a second call would make a second group. Callers look for their group by name first. */
  createParticipantGroup(name: string, workspaceId: string, description: string) {
    return this.#once('POST', '/participant-groups/', { name, workspace_id: workspaceId, description }, groupSchema);
  }

  async participantGroups(workspaceId: string): Promise<Array<z.infer<typeof groupSchema>>> {
    return this.#all(`/participant-groups/?workspace_id=${enc(workspaceId)}`, groupSchema);
  }

  /** Adding or removing participants sets membership: safe to repeat. */
  async groupParticipants(groupId: string, method: 'POST' | 'DELETE', participantIds: string[]): Promise<void> {
    await this.#safe(method, `/participant-groups/${enc(groupId)}/participants/`, { participant_ids: participantIds }, z.unknown());
  }

  async hooks(): Promise<Array<z.infer<typeof hookSchema>>> {
    return this.#all('/hooks/subscriptions/', hookSchema);
  }

  subscribe(workspaceId: string, eventType: string, targetUrl: string) {
    return this.#once(
      'POST',
      '/hooks/subscriptions/',
      { workspace_id: workspaceId, event_type: eventType, target_url: targetUrl },
      hookSchema,
    );
  }

  /** Every item of a list, page after page. A next page off the API's own address is refused: the token goes nowhere else. */
  async #all<T extends z.ZodType>(path: string, item: T): Promise<Array<z.output<T>>> {
    const api = `${this.#settings.url}/api/v1`;
    const items: Array<z.output<T>> = [];
    let next: string | null = path;
    for (let pages = 0; next !== null; pages++) {
      if (pages >= MAX_PAGES) throw new ProlificApiError(`Prolific's list at ${path} did not end after ${MAX_PAGES} pages`, null, false);
      const page: z.output<ReturnType<typeof listOf<T>>> = await this.#safe('GET', next, undefined, listOf(item));
      items.push(...page.results);
      const href = page._links?.next?.href ?? null;
      if (href !== null && !href.startsWith(`${api}/`)) {
        throw new ProlificApiError(`Prolific's list at ${path} named a next page outside ${api}: ${href.slice(0, 200)}`, null, false);
      }
      next = href === null ? null : href.slice(api.length);
    }
    return items;
  }

  async #safe<T extends z.ZodType>(method: string, path: string, body: unknown, schema: T): Promise<z.output<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(method, path, body, schema);
      } catch (err) {
        if (!(err instanceof ProlificApiError) || !err.retryable || attempt >= this.#attempts) throw err;
        await sleep(this.#backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
  }

  async #once<T extends z.ZodType>(method: string, path: string, body: unknown, schema: T): Promise<z.output<T>> {
    const value = await this.#request(method, path, body);
    const parsed = schema.safeParse(value);
    if (!parsed.success)
      throw new ProlificApiError(
        `Prolific answered ${method} ${path} with something unexpected: ${parsed.error.issues[0]?.message}`,
        null,
        false,
      );
    return parsed.data;
  }

  async #request(method: string, path: string, body: unknown): Promise<unknown> {
    const token = this.#settings.token;
    if (!token) {
      throw new ProlificApiError(
        'no Prolific API token: set HITLOOP_PROLIFIC_TOKEN or `hitloop config set prolific_token <token>` (Prolific: Settings > API token)',
        null,
        false,
      );
    }
    let res: Response;
    try {
      res = await fetch(`${this.#settings.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Token ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${this.#timeoutMs / 1000} s` : (err as Error).message;
      throw new ProlificApiError(`Prolific could not be reached for ${method} ${path}: ${why}`, null, true);
    }
    const text = await res.text();
    let value: unknown;
    try {
      value = text === '' ? undefined : JSON.parse(text);
    } catch {
      value = text;
    }
    if (res.ok) return value;
    if (res.status === 401 || res.status === 403) {
      throw new ProlificApiError(
        `Prolific refused the API token (HTTP ${res.status}): it is wrong, expired or lacks access; create a new one (Prolific: Settings > API token) and set HITLOOP_PROLIFIC_TOKEN`,
        res.status,
        false,
      );
    }
    const retryable = res.status >= 500 || res.status === 429;
    throw new ProlificApiError(`Prolific refused ${method} ${path} (HTTP ${res.status}): ${describeError(value)}`, res.status, retryable);
  }
}

/** Prolific's error body: `{"error": {"title", "detail"}}`, where detail may be field -> messages. */
function describeError(value: unknown): string {
  const error = (value as { error?: { title?: unknown; detail?: unknown } } | undefined)?.error;
  if (!error) return typeof value === 'string' ? value.slice(0, 300) : 'no details';
  const detail = error.detail;
  const text =
    detail && typeof detail === 'object'
      ? Object.entries(detail as Record<string, unknown>)
          .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : String(v)}`)
          .join('; ')
      : String(detail ?? '');
  return [error.title, text].filter(Boolean).join(': ').slice(0, 500);
}

const enc = encodeURIComponent;
