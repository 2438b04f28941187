/**
 * The schema of a task-run configuration (docs/design.md §2): what one launch of a task does, frozen and
 * validated before the run starts. Keys are spelled as in the YAML file. Parsing is idempotent:
 * a parsed config parses to itself, so the workflow can re-validate what the command line sent.
 *
 * Provider and blueprint options are only checked for shape here; their own option schemas are
 * applied by `validateRunConfig` (config/validateRun.ts), which knows the registered implementations.
 */
import path from 'node:path';
import { z } from 'zod';
import { didYouMean } from './errors.ts';
import { explain } from './zodIssues.ts';
import { moneyRules, moneySchema } from '../model/money.ts';

export const DAY_SECONDS = 24 * 60 * 60;

// ---------------------------------------------------------------- building blocks

const nonEmptyString = (what: string) =>
  z.string(explain(`must be ${what}`)).trim().min(1, explain(`must be ${what} (not empty)`));

const count = () => z.int(explain('must be an integer >= 0')).min(0, explain('must be an integer >= 0'));
const positiveCount = () => z.int(explain('must be an integer >= 1')).min(1, explain('must be an integer >= 1'));
const flag = () => z.boolean(explain('must be true or false'));
/** An amount of money (model/money.ts: as the database stores it). */
const money = (allowZero: boolean, required?: string) => {
  const rules = moneyRules(allowZero);
  return moneySchema(
    { type: explain(rules.type, required), min: explain(rules.min), decimals: explain(rules.decimals), max: explain(rules.max) },
    { allowZero },
  );
};
const qualificationName = () => nonEmptyString('a qualification name');

// ---------------------------------------------------------------- qualifications (docs/design.md §3)

export const NO_VALUE_COMPARATORS = ['Exists', 'DoesNotExist'] as const;
export const INTEGER_COMPARATORS = [
  'EqualTo',
  'NotEqualTo',
  'GreaterThan',
  'GreaterThanOrEqualTo',
  'LessThan',
  'LessThanOrEqualTo',
] as const;
export const LIST_COMPARATORS = ['In', 'NotIn'] as const;
export const COMPARATORS = [...NO_VALUE_COMPARATORS, ...INTEGER_COMPARATORS, ...LIST_COMPARATORS] as const;

export type Comparator = (typeof COMPARATORS)[number];
export type NoValueComparator = (typeof NO_VALUE_COMPARATORS)[number];
export type IntegerComparator = (typeof INTEGER_COMPARATORS)[number];
export type ListComparator = (typeof LIST_COMPARATORS)[number];

/** One requirement on a worker's qualifications; the value's shape always fits the comparator. */
export type QualificationRequirement =
  | { name: string; comparator: NoValueComparator }
  | { name: string; comparator: IntegerComparator; value: number }
  | { name: string; comparator: ListComparator; value: number[] };

const isOneOf = <T extends string>(list: readonly T[], value: string): value is T => (list as readonly string[]).includes(value);

const comparatorSchema = z.enum(COMPARATORS, {
  error: (issue) => {
    const allowed = `must be one of ${COMPARATORS.join(', ')}`;
    if (issue.input === undefined) return `required (${allowed.replace('must be ', '')})`;
    const guess = typeof issue.input === 'string' ? didYouMean(issue.input, COMPARATORS) : undefined;
    return guess === undefined ? allowed : `${allowed} (did you mean "${guess}"?)`;
  },
});

const qualificationSchema = z
  .strictObject(
    {
      name: qualificationName(),
      comparator: comparatorSchema,
      value: z
        .union(
          [z.int(explain('must be an integer')), z.array(z.int(explain('must be an integer')), explain('must be a list of integers'))],
          explain('must be an integer, or a list of integers for In / NotIn'),
        )
        .optional(),
    },
    explain('must be a mapping { name, comparator, value }'),
  )
  .superRefine((requirement, ctx) => {
    const { comparator, value } = requirement;
    const issue = (message: string) => ctx.addIssue({ code: 'custom', path: ['value'], message, input: value });
    if (isOneOf(NO_VALUE_COMPARATORS, comparator)) {
      if (value !== undefined) issue(`${comparator} takes no value (remove it)`);
    } else if (isOneOf(INTEGER_COMPARATORS, comparator)) {
      if (value === undefined) issue(`required (${comparator} compares with an integer value)`);
      else if (Array.isArray(value)) issue(`${comparator} takes a single integer (only In and NotIn take a list)`);
    } else if (value === undefined) {
      issue(`required (${comparator} takes a list of integers, e.g. [1, 2])`);
    } else if (!Array.isArray(value)) {
      issue(`${comparator} takes a list of integers, e.g. [${value}]`);
    } else if (value.length === 0) {
      issue(`${comparator} needs at least one integer in its list`);
    }
  })
  .transform((requirement) => requirement as QualificationRequirement);

// ---------------------------------------------------------------- data sources

export const DATA_FORMATS = ['json', 'jsonl', 'csv'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

const FORMAT_BY_EXTENSION: Readonly<Record<string, DataFormat>> = {
  '.json': 'json',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
};

export type AssignmentData = Record<string, unknown>;
export type DataFile = { file: string; format: DataFormat };
/** Where the assignments come from: an inline list of objects, or a file with a known format. */
export type DataSource = AssignmentData[] | DataFile;

export function formatFromExtension(file: string): DataFormat | undefined {
  return FORMAT_BY_EXTENSION[path.extname(file).toLowerCase()];
}

const assignmentObject = z.record(z.string(), z.unknown(), explain('must be a JSON object (one assignment: field names to values)'));

const DATA_SHAPES = 'a list of objects, a file path (.json, .jsonl, .csv), or { file, format }';

function fileWithFormat(file: string, format: DataFormat | undefined, ctx: z.RefinementCtx, at: PropertyKey[]): DataFile {
  const resolved = format ?? formatFromExtension(file);
  if (resolved === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: at,
      input: file,
      message: `cannot tell the format from the file name; name it .json, .jsonl or .csv, or write { file: ..., format: json | jsonl | csv }`,
    });
    return z.NEVER;
  }
  return { file, format: resolved };
}

export const dataSourceSchema = z.union(
  [
    z.array(assignmentObject, explain(`must be ${DATA_SHAPES}`)),
    nonEmptyString('a file path').transform((file, ctx) => fileWithFormat(file, undefined, ctx, [])),
    z
      .strictObject({
        file: nonEmptyString('a file path'),
        format: z.enum(DATA_FORMATS, explain(`must be one of ${DATA_FORMATS.join(', ')}`)).optional(),
      })
      .transform((spec, ctx) => fileWithFormat(spec.file, spec.format, ctx, ['file'])),
  ],
  explain(`must be ${DATA_SHAPES}`, `required (the assignments: ${DATA_SHAPES})`),
);

// ---------------------------------------------------------------- provider and blueprint

/** `{ type, ...options }`: the type names a registered implementation; the rest are its options. */
export type ComponentSpec = { type: string; [option: string]: unknown };

function componentSchema(kind: 'provider' | 'blueprint', example: string) {
  const typeName = nonEmptyString(`a ${kind} type name such as ${example}`);
  return z.union(
    [
      typeName.transform((type): ComponentSpec => ({ type })),
      z.looseObject({ type: typeName }).transform((spec): ComponentSpec => spec),
    ],
    explain(
      `must be a ${kind} type name (e.g. ${example}) or a mapping { type: ${example}, ...options }`,
      `required (which ${kind} runs this task: a type name such as ${example}, or { type: ${example}, ...options })`,
    ),
  );
}

/** The options part of a provider or blueprint spec (everything but `type`). */
export function componentOptions(spec: ComponentSpec): Record<string, unknown> {
  const { type: _type, ...options } = spec;
  return options;
}

// ---------------------------------------------------------------- screening and gold (docs/design.md §3)

const screeningSchema = z
  .strictObject(
    {
      enabled: flag().default(false),
      /** At most this many screening units at once across the run; 0 = no cap. */
      max_screening_units: count().default(0),
      /** Granted (= 1) to workers who pass screening; failing grants `block_qualification`. */
      passed_qualification: qualificationName().optional(),
      /** Inputs of screening units, used in turn; without it a screening unit gets `{}`. */
      data: dataSourceSchema.optional(),
    },
    explain('must be a mapping { enabled, max_screening_units, passed_qualification, data }'),
  )
  .superRefine((screening, ctx) => {
    if (screening.enabled && screening.passed_qualification === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['passed_qualification'],
        message: 'required when screening is enabled (the qualification granted to workers who pass)',
      });
    }
  });

/** A gold unit: the input shown to the worker and the answer the blueprint's gold validator expects. */
export const goldItemSchema = z.strictObject(
  {
    input: assignmentObject,
    expected: z.unknown().refine((v) => v !== undefined, explain('must be the known answer', 'required (the known answer)')),
  },
  explain('must be a mapping { input: {...}, expected: ... }'),
);
export type GoldItem = z.output<typeof goldItemSchema>;

const goldSchema = z
  .strictObject(
    {
      enabled: flag().default(false),
      /** Gold items `{ input, expected }`: inline, or a JSON / JSONL file of them. */
      data: dataSourceSchema.optional(),
      /** Golds each worker does before any real unit. */
      min_golds: count().default(1),
      /** After the first golds, one more gold after every this many real units; 0 = no more. */
      gold_every_units: count().default(0),
      /** A worker with more wrong golds than this is disqualified. */
      max_incorrect_golds: count().default(0),
      /** Prefix of the gold-count qualifications (`<base>-correct-golds`, ...); default: task_name. */
      qualification_base: qualificationName().optional(),
    },
    explain('must be a mapping { enabled, data, min_golds, gold_every_units, max_incorrect_golds }'),
  )
  .superRefine((gold, ctx) => {
    if (!gold.enabled) return;
    if (gold.data === undefined) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: 'required when gold is enabled (the gold items { input, expected })' });
    } else if (Array.isArray(gold.data)) {
      gold.data.forEach((item, index) => {
        const result = goldItemSchema.safeParse(item);
        for (const issue of result.error?.issues ?? []) {
          ctx.addIssue({ code: 'custom', path: ['data', index, ...issue.path], message: issue.message });
        }
      });
    }
    if (gold.min_golds === 0 && gold.gold_every_units === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['min_golds'],
        input: 0,
        message: 'with gold_every_units also 0 no worker would ever get a gold unit; set one of them >= 1',
      });
    }
  });

// ---------------------------------------------------------------- overlap and aggregation (docs/design.md §2; quality §3)

/** Independent labels per item: `min` units first, then one more at a time up to `max` while the item's confidence is below `confidence`. */
const overlapSchema = z
  .strictObject(
    {
      /** Units per item, each worked alone by a different worker. */
      min: positiveCount(),
      /** The most units one item may get (dynamic overlap); default: min (fixed overlap). */
      max: positiveCount().optional(),
      /** Add units while the item's aggregated confidence is below this; absent = fixed overlap. */
      confidence: z
        .number(explain('must be a number between 0 and 1 (exclusive)'))
        .gt(0, explain('must be a number between 0 and 1 (exclusive)'))
        .lt(1, explain('must be a number between 0 and 1 (exclusive)'))
        .optional(),
    },
    explain('must be a mapping { min, max, confidence }'),
  )
  .superRefine((overlap, ctx) => {
    if (overlap.max !== undefined && overlap.max < overlap.min) {
      ctx.addIssue({ code: 'custom', path: ['max'], input: overlap.max, message: `must be >= overlap.min (${overlap.min})` });
    }
  });

export const AGGREGATION_METHOD_NAMES = ['majority', 'dawid_skene'] as const;

const aggregateSchema = z.strictObject(
  {
    /** Submission fields aggregated per item (checked against the blueprint's fields at launch). */
    fields: z
      .array(nonEmptyString('a field name'), explain('must be a list of field names'))
      .min(1, explain('must name at least one field to aggregate')),
    method: z
      .enum(AGGREGATION_METHOD_NAMES, explain(`must be one of ${AGGREGATION_METHOD_NAMES.join(', ')}`))
      .default('majority'),
  },
  explain('must be a mapping { fields: [...], method: majority | dawid_skene }'),
);

// ---------------------------------------------------------------- the task-run config

export const DEFAULTS = {
  assignment_duration_seconds: 1800,
  task_lifetime_seconds: 31 * DAY_SECONDS,
  no_submission_patience_seconds: 43_200,
  reconnect_window_seconds: 300,
} as const;

const shownToWorkers = (what: string) =>
  z.string(explain(`must be ${what}`, `required (${what} shown to workers)`)).trim().min(1, explain(`must be ${what} (not empty)`));

const tagsSchema = z.union(
  [
    z.array(z.string(explain('must be a string')).trim().min(1, explain('must be a tag (not empty)'))),
    z.string().transform((text) =>
      text
        .split(',')
        .map((tag) => tag.trim())
        .filter((tag) => tag !== ''),
    ),
  ],
  explain('must be a list of strings or a comma-separated string', 'required (a list of keywords, or a comma-separated string)'),
);

export const taskRunConfigSchema = z
  .strictObject(
    {
      task_name: z
        .string(explain('must be a task name', 'required (a name that groups the runs of one task, e.g. "image-labels")'))
        .trim()
        .min(1, explain('must be a task name (not empty)')),
      task_title: shownToWorkers('a string'),
      task_description: shownToWorkers('a string'),
      task_tags: tagsSchema,
      task_reward: money(true, "required (pay per unit, a number >= 0 in the provider's currency)"),
      assignment_duration_seconds: positiveCount().default(DEFAULTS.assignment_duration_seconds),
      task_lifetime_seconds: positiveCount().default(DEFAULTS.task_lifetime_seconds),
      no_submission_patience_seconds: positiveCount().default(DEFAULTS.no_submission_patience_seconds),
      /** 0 = no cap. */
      max_num_concurrent_units: count().default(0),
      /** 0 = no cap. */
      allowed_concurrent: count().default(0),
      /** 0 = no cap; counts across all runs of the task. */
      maximum_units_per_worker: count().default(0),
      units_per_assignment: positiveCount().default(1),
      reconnect_window_seconds: count().default(DEFAULTS.reconnect_window_seconds),
      block_qualification: qualificationName().optional(),
      onboarding_qualification: qualificationName().optional(),
      qualifications: z.array(qualificationSchema, explain('must be a list of { name, comparator, value }')).default([]),
      screening: screeningSchema.default({ enabled: false, max_screening_units: 0 }),
      gold: goldSchema.default({ enabled: false, min_golds: 1, gold_every_units: 0, max_incorrect_golds: 0 }),
      /** 0 = never. */
      auto_approve_after_seconds: count().default(0),
      /** Stop launching once the run's spend would pass this; absent = no limit. */
      max_spend: money(false).optional(),
      provider: componentSchema('provider', 'mock'),
      blueprint: componentSchema('blueprint', 'static-form'),
      data: dataSourceSchema,
      /** Independent labels per item (docs/design.md §2); absent = `units_per_assignment` units per assignment. */
      overlap: overlapSchema.optional(),
      /** Aggregate each item's answers after every submission (needs `overlap`). */
      aggregate: aggregateSchema.optional(),
    },
    explain('must be a mapping of settings (task_name: ..., task_reward: ..., ...)'),
  )
  .superRefine((config, ctx) => {
    if (config.screening.enabled && config.block_qualification === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['block_qualification'],
        message: 'required when screening is enabled (workers who fail screening are given it)',
      });
    }
    if (config.block_qualification !== undefined && config.block_qualification === config.onboarding_qualification) {
      ctx.addIssue({
        code: 'custom',
        path: ['onboarding_qualification'],
        input: config.onboarding_qualification,
        message: 'must differ from block_qualification (one admits workers, the other keeps them out)',
      });
    }
    checkOverlap(config, ctx);
  });

/** Overlap (independent labels) and units_per_assignment (a group working together) exclude each other. */
function checkOverlap(
  config: { units_per_assignment: number; overlap?: z.output<typeof overlapSchema>; aggregate?: z.output<typeof aggregateSchema> },
  ctx: z.RefinementCtx,
): void {
  if (config.overlap && config.units_per_assignment > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['units_per_assignment'],
      input: config.units_per_assignment,
      message: 'must be 1 with overlap (overlap gives each item independent units; units_per_assignment makes a group that works together)',
    });
  }
  if (config.aggregate && !config.overlap) {
    ctx.addIssue({ code: 'custom', path: ['aggregate'], message: 'needs overlap (e.g. overlap: { min: 3 }): aggregation combines independent labels of one item' });
  }
  if (config.overlap?.confidence !== undefined && !config.aggregate) {
    ctx.addIssue({
      code: 'custom',
      path: ['overlap', 'confidence'],
      input: config.overlap.confidence,
      message: 'needs aggregate (e.g. aggregate: { fields: [label] }): the confidence is the aggregate\'s',
    });
  }
}

/** What a config file or a workflow input may hold (defaults not yet applied). */
export type TaskRunConfigInput = z.input<typeof taskRunConfigSchema>;
/** A validated config with every default applied. */
export type TaskRunConfig = z.output<typeof taskRunConfigSchema>;
export type ScreeningConfig = TaskRunConfig['screening'];
export type GoldConfig = TaskRunConfig['gold'];
export type OverlapConfig = NonNullable<TaskRunConfig['overlap']>;
export type AggregateConfig = NonNullable<TaskRunConfig['aggregate']>;

/** Units each item starts with: overlap.min for independent labels, else units_per_assignment. */
export function unitsPerItem(config: Pick<TaskRunConfig, 'units_per_assignment' | 'overlap'>): number {
  return config.overlap?.min ?? config.units_per_assignment;
}

export const TASK_RUN_CONFIG_KEYS = Object.keys(taskRunConfigSchema.shape) as (keyof TaskRunConfig)[];

/** Names of the qualifications that count a worker's gold results in this task. */
export function goldQualificationNames(config: Pick<TaskRunConfig, 'task_name' | 'gold'>): {
  correct: string;
  incorrect: string;
} {
  const base = config.gold.qualification_base ?? config.task_name;
  return { correct: `${base}-correct-golds`, incorrect: `${base}-incorrect-golds` };
}
