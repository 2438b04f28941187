/**
 * Strings and JSON values both databases store exactly, and zod schemas that refuse the rest.
 *
 * PostgreSQL `text` and `jsonb` refuse NUL (U+0000), and a lone UTF-16 surrogate cannot be written
 * as UTF-8 at all (it would silently become U+FFFD); JSON has no Infinity or NaN (JSON.stringify
 * turns them into null). A value that would be changed or refused on the way to the database is
 * refused at the edge instead, naming where it is, so that what is acknowledged is what is stored.
 *
 * Objects are checked in place, never copied: a zod record would rebuild them and drop a
 * `__proto__` key, and keys such as `constructor` or `toString` are data like any other.
 * Pure: safe to import from workflow code.
 */
import { z } from 'zod';

/** Deeper JSON than this is refused (no form or live state needs it; recursion stays bounded). */
export const MAX_JSON_DEPTH = 32;

/** Why `text` cannot be stored exactly, or null when it can. */
export function unstorableText(text: string): string | null {
  if (text.includes('\u0000')) return 'contains a NUL character (U+0000), which cannot be stored';
  if (!text.isWellFormed()) return 'contains a lone UTF-16 surrogate (not valid Unicode), which cannot be stored';
  return null;
}

/**
 * The well-formed strings `unstorableText` accepts (no NUL), as a regular expression source for
 * documents (the API's OpenAPI schemas). Lone surrogates are left to "strings are well-formed Unicode"
 * (I-JSON, RFC 7493): a pattern naming U+D800-U+DFFF cannot be compiled by engines that read code
 * points as Unicode scalar values (Rust's, behind schemathesis's validator), which drop it.
 */
export const STORABLE_TEXT_PATTERN = '^[^\\u0000]*$';

export interface UnstorableProblem {
  path: PropertyKey[];
  message: string;
}

/** The first place in a parsed JSON value that cannot be stored exactly, or null. */
export function findUnstorable(value: unknown, path: PropertyKey[] = [], depth = 0): UnstorableProblem | null {
  if (typeof value === 'string') {
    const why = unstorableText(value);
    return why ? { path, message: why } : null;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? null : { path, message: 'is a number out of range (JSON numbers must be finite)' };
  if (value === null || typeof value === 'boolean') return null;
  if (typeof value !== 'object') return { path, message: `is not JSON (${typeof value})` };
  if (depth >= MAX_JSON_DEPTH) return { path, message: `is nested deeper than ${MAX_JSON_DEPTH} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = findUnstorable(value[i], [...path, i], depth + 1);
      if (problem) return problem;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    const why = unstorableText(key);
    if (why) return { path: [...path, key], message: `has a key that ${why}` };
    const problem = findUnstorable((value as Record<string, unknown>)[key], [...path, key], depth + 1);
    if (problem) return problem;
  }
  return null;
}

/** A string the databases store exactly. */
export const storableString = (): z.ZodString =>
  z.string().check((ctx) => {
    const why = unstorableText(ctx.value);
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  });

const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON object the databases store exactly, passed on as the very object received (not a copy). */
export const storableJsonObject = () =>
  z.custom<Record<string, unknown>>(isJsonObject, 'must be a JSON object').check((ctx) => {
    const problem = findUnstorable(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', message: problem.message, path: problem.path, input: ctx.value });
  });
