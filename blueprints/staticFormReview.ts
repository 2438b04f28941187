/**
 * The review renderer of the `static-form` blueprint, beside its task page renderer
 * (staticFormPage.ts): what the operator's review page shows for one submitted unit, as a list of
 * typed blocks: first the item as the task page showed it (media and links from the unit's data,
 * then the data the page listed as text), then the answers with the form's own field types
 * (the chosen radio/select/checkbox options among all of them, numbers with their bounds, text).
 *
 * Blocks are data, not HTML: the console builds them with the DOM as text, so nothing in item data
 * or a submission is ever parsed as markup. URLs are checked here (only http(s) URLs, and `data:`
 * media for images/audio/video, as on the task page).
 */
import { type StaticFormField, isDisplayField, staticFormOptionsSchema } from './staticForm.ts';
import type { ReviewBlock } from './types.ts';

const labelOf = (field: StaticFormField): string => field.label ?? field.name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

/** The URL when it is one a page may show: http(s), or `data:` media for media fields; else null. */
export function safeReviewUrl(value: unknown, media: boolean): string | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (media && /^data:(image|audio|video)\//i.test(text)) return text;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

/** The record's own value at `key`: a field named `constructor` or `toString` is not read from the prototype. */
const own = (record: Record<string, unknown>, key: string): unknown => (Object.hasOwn(record, key) ? record[key] : undefined);

/** Any JSON value as the text the operator reads (`null` as "null"); absent is null. */
const asText = (value: unknown): string | null => (value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value));

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');

/** Whether `value` is what the field's type holds (absent counts: an optional field left empty). */
function fitsField(field: StaticFormField, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  switch (field.type) {
    case 'radio':
    case 'select':
      return typeof value === 'string';
    case 'checkboxes':
      return isStringArray(value);
    case 'checkbox':
      return typeof value === 'boolean';
    case 'number':
      return typeof value === 'number';
    default:
      return true;
  }
}

function answerBlock(field: StaticFormField, value: unknown): ReviewBlock {
  const base = { part: 'answer' as const, field: field.name, label: labelOf(field), ...(field.help ? { help: field.help } : {}) };
  // An answer of another shape than its field's (stored before the form changed, say) is shown as
  // it is, as text: drawn as the field it would read as nothing chosen, or as "no".
  if (!fitsField(field, value)) return { ...base, type: 'text', value: asText(value) };
  switch (field.type) {
    case 'radio':
    case 'select':
      return { ...base, type: 'choice', options: field.options ?? [], chosen: typeof value === 'string' ? [value] : [], multiple: false };
    case 'checkboxes':
      return { ...base, type: 'choice', options: field.options ?? [], chosen: isStringArray(value) ? value : [], multiple: true };
    case 'checkbox':
      return { ...base, type: 'checkbox', checked: value === true };
    case 'number':
      return {
        ...base,
        type: 'number',
        value: typeof value === 'number' ? value : null,
        ...(field.min !== undefined ? { min: field.min } : {}),
        ...(field.max !== undefined ? { max: field.max } : {}),
      };
    default:
      return { ...base, type: 'text', value: asText(value) };
  }
}

const textBlock = (part: 'item' | 'answer', key: string, value: unknown): ReviewBlock => ({
  part,
  field: key,
  label: key,
  type: 'text',
  value: asText(value),
});

export function staticFormReviewView(args: { options: unknown; itemData: unknown; submission: unknown }): ReviewBlock[] {
  const options = staticFormOptionsSchema.parse(args.options);
  const fields = options.fields ?? [];
  const item = asRecord(args.itemData);
  const answers = asRecord(args.submission);
  const blocks: ReviewBlock[] = [];
  const shownKeys = new Set<string>();
  for (const field of fields.filter(isDisplayField)) {
    const key = field.source ?? field.name;
    shownKeys.add(key);
    const media = field.type !== 'link';
    blocks.push({
      part: 'item',
      field: field.name,
      label: labelOf(field),
      type: field.type as 'image' | 'audio' | 'video' | 'link',
      url: safeReviewUrl(own(item, key), media),
      ...(field.help ? { help: field.help } : {}),
    });
  }
  // The page lists the rest of the unit's data as text (static-form.js showUnit): so does review.
  for (const [key, value] of Object.entries(item)) if (!shownKeys.has(key)) blocks.push(textBlock('item', key, value));
  const answered = new Set<string>();
  for (const field of fields) {
    if (isDisplayField(field) || field.type === 'hidden') continue;
    answered.add(field.name);
    blocks.push(answerBlock(field, own(answers, field.name)));
  }
  // A custom template's inputs (or hidden fields) come as they are: every other answer as text.
  for (const [key, value] of Object.entries(answers)) if (!answered.has(key)) blocks.push(textBlock('answer', key, value));
  return blocks;
}
