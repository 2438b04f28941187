/**
 * The `static-form` blueprint: one agent sees the unit's data, fills a form, submits.
 * The run's config lists the form's fields (or names a custom HTML template); submissions are
 * validated against those fields before they reach the workflow.
 */
import { z } from 'zod';
import { storableJsonObject } from '../model/storableJson.ts';
import type { Blueprint, ValidationResult } from './types.ts';
import { renderStaticFormPage } from './staticFormPage.ts';
import { staticFormReviewView } from './staticFormReview.ts';

/** Fields that show the unit's data (a media file, a link) and submit nothing. */
export const DISPLAY_FIELD_TYPES = ['image', 'audio', 'video', 'link'] as const;
const INPUT_FIELD_TYPES = ['text', 'textarea', 'number', 'select', 'checkbox', 'radio', 'checkboxes', 'hidden'] as const;

const fieldSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier (letters, digits, _)'),
  label: z.string().min(1).optional(),
  type: z.enum([...INPUT_FIELD_TYPES, ...DISPLAY_FIELD_TYPES]).default('text'),
  required: z.boolean().default(true),
  /** For `select`, `radio` and `checkboxes`: the allowed values. */
  options: z.array(z.string().min(1)).min(1).optional(),
  max_length: z.number().int().positive().default(10_000),
  /** For `number`: the smallest and largest value allowed. */
  min: z.number().optional(),
  max: z.number().optional(),
  /** A sentence under the field that says what to enter. */
  help: z.string().optional(),
  /** For display fields: the key of the unit's data holding the URL (default: the field's name). */
  source: z.string().min(1).optional(),
  /** For `hidden`: the value submitted; `{{key}}` is filled from the unit's data. */
  value: z.string().optional(),
});

export const isDisplayField = (field: { type: string }): boolean => (DISPLAY_FIELD_TYPES as readonly string[]).includes(field.type);

export const staticFormOptionsSchema = z
  .strictObject({
    fields: z.array(fieldSchema).min(1, 'list at least one form field').optional(),
    /** A custom HTML template file for the task page; its form's inputs are submitted as they are. */
    template: z.string().min(1).optional(),
    instructions: z.string().optional(),
    /** Onboarding: expected answers, field name -> exact value (see the onboarding validator). */
    onboarding: z.strictObject({ fields: z.array(fieldSchema).min(1), expected: z.record(z.string(), z.unknown()) }).optional(),
    /** Screening units: a submission passes when each named field has exactly this value. */
    screening: z.strictObject({ expected: z.record(z.string(), z.unknown()) }).optional(),
  })
  .superRefine((o, ctx) => {
    if (!o.fields && !o.template) ctx.addIssue({ code: 'custom', path: ['fields'], message: 'give the form fields, or a template' });
    for (const [i, f] of (o.fields ?? []).entries()) {
      if ((f.type === 'select' || f.type === 'radio' || f.type === 'checkboxes') && !f.options) {
        ctx.addIssue({ code: 'custom', path: ['fields', i, 'options'], message: `a ${f.type} field needs options` });
      }
      if (f.min !== undefined && f.max !== undefined && f.min > f.max) {
        ctx.addIssue({ code: 'custom', path: ['fields', i, 'max'], message: `max (${f.max}) is below min (${f.min})` });
      }
    }
  });
export type StaticFormOptions = z.output<typeof staticFormOptionsSchema>;
export type StaticFormField = z.output<typeof fieldSchema>;

function fieldValueSchema(field: StaticFormField): z.ZodType {
  const options = field.options as [string, ...string[]];
  let base: z.ZodType;
  if (field.type === 'number') {
    let n = z.number();
    if (field.min !== undefined) n = n.min(field.min, `must be at least ${field.min}`);
    if (field.max !== undefined) n = n.max(field.max, `must be at most ${field.max}`);
    base = n;
  } else if (field.type === 'checkbox') base = z.boolean();
  else if (field.type === 'select' || field.type === 'radio') base = z.enum(options);
  else if (field.type === 'checkboxes') base = field.required ? z.array(z.enum(options)).min(1, 'choose at least one') : z.array(z.enum(options));
  else base = z.string().max(field.max_length);
  if (!field.required) return base.optional();
  return field.type === 'text' || field.type === 'textarea' ? (base as z.ZodString).trim().min(1, 'required') : base;
}

export const staticFormBlueprint: Blueprint = {
  type: 'static-form',
  optionsSchema: staticFormOptionsSchema,
  collaboration: 'independent',
  submissionFields(options) {
    return staticFormOptionsSchema.parse(options).fields?.map((f) => f.name);
  },
  initData({ assignmentData, options, position }) {
    const o = staticFormOptionsSchema.parse(options);
    return { data: assignmentData, fields: o.fields ?? [], instructions: o.instructions ?? null, ...(position ? { position } : {}) };
  },
  submissionSchema(options) {
    const o = staticFormOptionsSchema.parse(options);
    // A template's inputs are data as they come (checked in place: a `__proto__` name is kept).
    if (!o.fields) return storableJsonObject();
    return z.strictObject(Object.fromEntries(o.fields.filter((f) => !isDisplayField(f)).map((f) => [f.name, fieldValueSchema(f)])));
  },
  taskPage({ options, runId, task }) {
    return { html: renderStaticFormPage({ options: staticFormOptionsSchema.parse(options), runId, ...(task ? { task } : {}) }) };
  },
  reviewView: (args) => staticFormReviewView(args),
  validators: {
    onboarding(submission, options) {
      const o = staticFormOptionsSchema.parse(options);
      return compareAnswers(submission, o.onboarding?.expected ?? {});
    },
    screening(submission, options) {
      const o = staticFormOptionsSchema.parse(options);
      return compareAnswers(submission, o.screening?.expected ?? {});
    },
    /** A gold item's `expected` is field name -> value; every named field must match exactly. */
    gold(submission, expected) {
      if (typeof expected !== 'object' || expected === null || Array.isArray(expected)) return false;
      return compareAnswers(submission, expected as Record<string, unknown>).passed;
    },
  },
};

/** Pass when each expected field has exactly the expected value (compared as JSON, so lists and objects work too). */
function compareAnswers(submission: unknown, expected: Record<string, unknown>): ValidationResult {
  const given = typeof submission === 'object' && submission !== null ? (submission as Record<string, unknown>) : {};
  const wrong = Object.entries(expected).filter(([k, v]) => JSON.stringify(given[k]) !== JSON.stringify(v));
  return wrong.length === 0 ? { passed: true } : { passed: false, reason: `wrong answers: ${wrong.map(([k]) => k).join(', ')}` };
}
