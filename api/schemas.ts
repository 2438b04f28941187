/**
 * The JSON API's request and response shapes, as zod schemas: requests are validated with them and
 * the OpenAPI document (api/openapi.ts) is generated from the same schemas, so the two cannot drift.
 */
import { z } from 'zod';
import { REVIEW_DECISIONS, UNIT_KINDS } from '../model/entities.ts';
import { AGENT_STATUSES, TASK_RUN_STATUSES, UNIT_STATUSES } from '../model/status.ts';
import { NOT_BLANK, REQUEST_KEY_PATTERN, bonusAmountSchema, bonusReasonSchema } from '../review/requests.ts';
import { EXPORT_FORMATS } from '../export/exportRun.ts';
import { RunLimitsChangeSchema } from '../workflows/definitions.ts';

export const ErrorSchema = z
  .object({ code: z.string(), message: z.string() })
  .meta({ id: 'Error', description: 'Every failure: a code for programs and a sentence for people.' });

const requestKey = z
  .string('a request key is required: any 1-200 letters, digits or ._:@+- characters, the same for a retry of the same action')
  .regex(REQUEST_KEY_PATTERN, 'a request key is 1-200 letters, digits or ._:@+- characters')
  .meta({ description: 'Names the action: the same key again (a double click, a retry) never acts twice.' });

export const LoginSchema = z.strictObject({ password: z.string('give the operator password').min(1, 'give the operator password').max(1000) });
export const SessionSchema = z
  .looseObject({
    authenticated: z.literal(true),
    via: z.enum(['session', 'token']),
    csrfToken: z.string().nullable().meta({ description: 'Send it as x-csrf-token with every change made with the session cookie.' }),
    expiresAt: z.string().nullable(),
  })
  .meta({ id: 'Session' });

const unitCounts = z.looseObject(Object.fromEntries(UNIT_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof UNIT_STATUSES)[number], z.ZodNumber>);

export const RunSchema = z
  .looseObject({
    runId: z.string(),
    taskName: z.string(),
    status: z.enum(TASK_RUN_STATUSES),
    endReason: z.string().nullable(),
    failureReason: z.string().nullable(),
    units: unitCounts,
    totalUnits: z.number().int(),
    /** Units done: completed or reviewed. */
    doneUnits: z.number().int(),
    spend: z.number(),
    maxSpend: z.number().nullable(),
    createdAt: z.string().nullable(),
    /** Seconds until the run's lifetime ends; null when ended or unknown. */
    secondsLeft: z.number().nullable(),
  })
  .meta({ id: 'Run' });

export const RunLimitsSchema = z
  .looseObject({
    max_num_concurrent_units: z.number().int(),
    allowed_concurrent: z.number().int(),
    maximum_units_per_worker: z.number().int(),
    task_reward: z.number(),
    task_lifetime_seconds: z.number().int(),
  })
  .meta({ id: 'RunLimits' });

export const RunDetailSchema = RunSchema.extend({
  limits: RunLimitsSchema.nullable().meta({ description: 'The live caps (null when the run is not running).' }),
  taskTitle: z.string().nullable(),
}).meta({ id: 'RunDetail' });

export const RunListSchema = z.looseObject({ runs: z.array(RunSchema) }).meta({ id: 'RunList' });
// The schema itself, not its lazy wrapper (workflows/definitions.ts); minProperties: the refinement
// that asks for one setting at least, said in the document too.
export const LimitsChangeSchema = RunLimitsChangeSchema.unwrap().meta({ id: 'RunLimitsChange', description: 'The caps to change (one at least); the rest stay.', minProperties: 1 });
export const LimitsResultSchema = z.looseObject({ limits: RunLimitsSchema });
export const ShutdownSchema = z.strictObject({
  reason: z
    .string('a shutdown reason is text')
    .regex(NOT_BLANK, 'a shutdown reason, when given, is not blank')
    .max(500, 'a shutdown reason is at most 500 characters')
    .trim()
    .optional(),
});

export const RunParams = z.object({ runId: z.string().min(1).max(200) });

/**
 * A whole number in a query string, digits only: an empty `offset=` (or ` 5`, `1e2`, `0x10`) is refused
 * with `message` rather than read as a number the way `Number()` would. The document says `integer`.
 */
const queryInteger = (message: string, min: number, max: number, fallback: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' ? (/^[0-9]+$/.test(value) ? Number(value) : Number.NaN) : value),
    z.number(message).int(message).min(min, message).max(max, message).default(fallback),
  );

export const UnitPageQuery = z.strictObject({
  status: z.enum(['awaiting', 'reviewed', 'all'], "status must be awaiting, reviewed or all").default('awaiting'),
  worker: z.string().min(1).max(200).optional(),
  by: z.enum(['item', 'worker'], 'by must be item or worker').default('item').meta({ description: 'The order of the units: by item, or by worker (then by item).' }),
  offset: queryInteger('offset must be a whole number >= 0', 0, Number.MAX_SAFE_INTEGER, 0),
  limit: queryInteger('limit must be a whole number 1..200', 1, 200, 50),
});

const blockBase = { part: z.enum(['item', 'answer']), field: z.string(), label: z.string(), help: z.string().optional() };
export const ReviewBlockSchema = z
  .discriminatedUnion('type', [
    z.looseObject({ ...blockBase, type: z.enum(['image', 'audio', 'video', 'link']), url: z.string().nullable() }),
    z.looseObject({ ...blockBase, type: z.literal('text'), value: z.string().nullable() }),
    z.looseObject({ ...blockBase, type: z.literal('number'), value: z.number().nullable(), min: z.number().optional(), max: z.number().optional() }),
    z.looseObject({ ...blockBase, type: z.literal('checkbox'), checked: z.boolean() }),
    z.looseObject({ ...blockBase, type: z.literal('choice'), options: z.array(z.string()), chosen: z.array(z.string()), multiple: z.boolean() }),
  ])
  .meta({ id: 'ReviewBlock', description: 'One block of a unit\'s review: data to show as text, never HTML; URLs are http(s) or data: media only.' });

export const SubmittedUnitSchema = z
  .looseObject({
    unitId: z.string(),
    assignmentId: z.string(),
    assignmentIndex: z.number().int(),
    assignmentData: z.unknown(),
    unitKind: z.enum(UNIT_KINDS),
    unitStatus: z.enum(UNIT_STATUSES),
    agentStatus: z.enum(AGENT_STATUSES),
    workerId: z.string(),
    provider: z.string(),
    providerWorkerId: z.string(),
    submittedAt: z.string().nullable(),
    durationSeconds: z.number().nullable(),
    review: z.looseObject({ decision: z.enum(REVIEW_DECISIONS), note: z.string().nullable(), requestKey: z.string(), reviewedAt: z.string() }).nullable(),
    bonuses: z.array(z.looseObject({ amount: z.number(), reason: z.string(), status: z.string(), requestKey: z.string() })),
    data: z.unknown(),
    view: z
      .array(ReviewBlockSchema)
      .nullable()
      .meta({ description: 'The item and the answers as the run\'s blueprint renders them for review (null: the blueprint has no review renderer).' }),
  })
  .meta({ id: 'SubmittedUnit' });

export const WorkerHistorySchema = z
  .looseObject({
    workerId: z.string(),
    provider: z.string(),
    providerWorkerId: z.string(),
    blocked: z.boolean(),
    submitted: z.number().int(),
    approved: z.number().int(),
    rejected: z.number().int(),
    softRejected: z.number().int(),
    /** approved / reviewed, over every run; null before the first review. */
    approvalRate: z.number().nullable(),
    goldScored: z.number().int(),
    /** correct / scored gold units, over every run; null when none was scored. */
    goldAccuracy: z.number().nullable(),
  })
  .meta({ id: 'WorkerHistory' });

export const UnitPageSchema = z
  .looseObject({
    units: z.array(SubmittedUnitSchema),
    offset: z.number().int(),
    limit: z.number().int(),
    /** More units may follow: ask again with offset + limit. */
    more: z.boolean(),
    workers: z.array(WorkerHistorySchema).meta({ description: 'The history of each worker on this page.' }),
  })
  .meta({ id: 'UnitPage' });

/** At most this many units per review request: bulk actions send pages of units, each with its own key. */
export const MAX_UNITS_PER_REQUEST = 200;

export const ReviewRequestSchema = z.strictObject({
  decision: z.enum(REVIEW_DECISIONS, `decision must be one of ${REVIEW_DECISIONS.join(', ')}`),
  unitIds: z
    .array(z.string().min(1).max(200))
    .min(1, 'name at least one unit')
    .max(MAX_UNITS_PER_REQUEST, `at most ${MAX_UNITS_PER_REQUEST} units per request: send the others in further requests`),
  note: z.string().max(1000).optional(),
  requestKey,
});

export const ReviewResultSchema = z
  .looseObject({
    kind: z.enum(['review', 'bonus']),
    requestKey: z.string(),
    unitId: z.string(),
    workerId: z.string(),
    unitStatus: z.string(),
    agentStatus: z.string(),
    decision: z.enum(REVIEW_DECISIONS).optional(),
    amount: z.number().optional(),
    repeated: z.boolean().meta({ description: 'True when this request key had acted before: nothing was done twice.' }),
  })
  .meta({ id: 'ReviewResult' });
export const ReviewResultsSchema = z.looseObject({ results: z.array(ReviewResultSchema) });

export const BonusRequestSchema = z.strictObject({
  unitId: z.string().min(1).max(200),
  amount: bonusAmountSchema,
  reason: bonusReasonSchema,
  requestKey,
});

export const ExportQuery = z.strictObject({ format: z.enum(EXPORT_FORMATS, `format must be one of ${EXPORT_FORMATS.join(', ')}`).default('jsonl') });

export const QualificationListSchema = z
  .looseObject({
    qualifications: z.array(z.looseObject({ name: z.string(), description: z.string().nullable(), grants: z.number().int(), createdAt: z.string() })),
    grants: z.array(
      z.looseObject({ qualification: z.string(), value: z.number(), workerId: z.string(), provider: z.string(), providerWorkerId: z.string(), updatedAt: z.string() }),
    ),
  })
  .meta({ id: 'QualificationList' });

export const QualificationCreateSchema = z.strictObject({ name: z.string().min(1).max(200), description: z.string().max(1000).optional() });
export const QualificationParams = z.object({ name: z.string().min(1).max(200) });

const workerRef = {
  provider: z.string('name the worker\'s provider, e.g. mock').min(1).max(100),
  providerWorkerId: z.string('give the worker\'s id at the provider').min(1).max(200),
};
export const GrantRequestSchema = z.strictObject({ ...workerRef, value: z.int('a qualification value must be an integer'), requestKey: requestKey.optional() });
export const RevokeRequestSchema = z.strictObject({ ...workerRef, requestKey: requestKey.optional() });
export const GrantResultSchema = z
  .looseObject({
    qualification: z.string(),
    worker: z.looseObject({ workerId: z.string(), provider: z.string(), providerWorkerId: z.string() }),
    value: z.number().nullable(),
    previous: z.number().nullable(),
    changed: z.boolean(),
  })
  .meta({ id: 'GrantResult' });

export const BlockRequestSchema = z.strictObject({ ...workerRef, blocked: z.boolean(), reason: z.string().max(1000).optional(), requestKey: requestKey.optional() });
export const BlockResultSchema = z
  .looseObject({
    worker: z.looseObject({ workerId: z.string(), provider: z.string(), providerWorkerId: z.string() }),
    blocked: z.boolean(),
    changed: z.boolean(),
  })
  .meta({ id: 'BlockResult' });
