/**
 * Turns zod's issues into ConfigIssues a user can act on: the key path as written in YAML, the bad
 * value itself, what is allowed, and for unknown keys the key that was probably meant.
 */
import { z } from 'zod';
import { ConfigError, didYouMean, formatPath, type ConfigIssue } from './errors.ts';

type ZodIssue = z.core.$ZodIssue;

/**
 * An error function for a schema: `allowed` for a wrong value, `required` (when given) for a missing one.
 * The allowed text is phrased to follow "<value> is not allowed: ".
 */
export function explain(allowed: string, required?: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) => (issue.input === undefined ? (required ?? `required (${allowed.replace(/^must be /, '')})`) : allowed),
  };
}

export interface IssueOptions {
  /** Path of the validated value inside a larger document (`['blueprint']` for blueprint options). */
  prefix?: readonly PropertyKey[];
  /** The source line of the value at a path, when the input came from a file. */
  locate?: (path: readonly PropertyKey[]) => number | undefined;
}

export function configErrorFromZod(
  error: z.ZodError,
  input: unknown,
  schema: z.ZodType,
  where?: string,
  options: IssueOptions = {},
): ConfigError {
  return new ConfigError(issuesFromZod(error.issues, input, schema, options), where);
}

/**
 * `input` and `schema` are what was validated; `prefix` only changes how paths are shown (and located),
 * e.g. `['blueprint']` when blueprint options were validated on their own.
 */
export function issuesFromZod(
  issues: readonly ZodIssue[],
  input: unknown,
  schema: z.ZodType,
  options: IssueOptions = {},
): ConfigIssue[] {
  return convertAll(issues, [], input, schema, options);
}

function convertAll(
  issues: readonly ZodIssue[],
  base: readonly PropertyKey[],
  input: unknown,
  schema: z.ZodType,
  options: IssueOptions,
): ConfigIssue[] {
  return issues.flatMap((issue) => convert(issue, [...base, ...issue.path], input, schema, options));
}

function convert(
  issue: ZodIssue,
  path: readonly PropertyKey[],
  input: unknown,
  schema: z.ZodType,
  options: IssueOptions,
): ConfigIssue[] {
  const prefix = options.prefix ?? [];
  const make = (at: readonly PropertyKey[], message: string, value?: { found: boolean; value?: unknown }): ConfigIssue => {
    const shown = [...prefix, ...at];
    const out: ConfigIssue = { path: formatPath(shown), message };
    if (value?.found && value.value !== undefined) out.value = value.value;
    const line = options.locate?.(shown);
    if (line !== undefined) out.line = line;
    return out;
  };
  if (issue.code === 'unrecognized_keys') {
    const known = objectKeysAt(schema, path) ?? [];
    return issue.keys.map((key) => make([...path, key], unknownKeyMessage(key, known)));
  }
  if (issue.code === 'invalid_union') {
    // A union of shapes (`data: list | path | {file}`): when exactly one branch got past the
    // type check, its issues are the precise ones (`data[3]`); otherwise say what shapes are allowed.
    const matching = issue.errors.filter((branch) => !branch.every((i) => i.code === 'invalid_type' && i.path.length === 0));
    const [only] = matching;
    if (matching.length === 1 && only) return convertAll(only, path, input, schema, options);
  }
  return [make(path, issue.message, valueAt(input, path))];
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = didYouMean(key, known);
  const parts = [];
  if (guess !== undefined) parts.push(`did you mean "${guess}"?`);
  // A short list helps more than it clutters; a long one only when there is no good guess.
  if (known.length > 0 && (guess === undefined || known.length <= 12)) parts.push(`known keys: ${known.join(', ')}`);
  return parts.length > 0 ? `unknown key (${parts.join('; ')})` : 'unknown key';
}

function valueAt(input: unknown, path: readonly PropertyKey[]): { found: boolean; value?: unknown } {
  let current = input;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return { found: false };
    if (!Object.prototype.hasOwnProperty.call(current, segment)) return { found: false };
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return { found: true, value: current };
}

/** The keys an object schema at `path` accepts, looking through defaults, optionals, pipes, arrays and unions. */
function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const target = schemaAt(schema, path);
  return target === undefined ? undefined : Object.keys(target.shape);
}

function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  const node = unwrap(schema);
  if (path.length === 0) {
    if (node instanceof z.ZodObject) return node;
    if (node instanceof z.ZodUnion) {
      for (const option of node.options as readonly z.ZodType[]) {
        const found = schemaAt(option, path);
        if (found) return found;
      }
    }
    return undefined;
  }
  const [head, ...rest] = path;
  if (node instanceof z.ZodObject && typeof head === 'string') {
    const child = (node.shape as Record<string, z.ZodType>)[head];
    return child === undefined ? undefined : schemaAt(child, rest);
  }
  if (node instanceof z.ZodArray && typeof head === 'number') return schemaAt(node.element as z.ZodType, rest);
  if (node instanceof z.ZodUnion) {
    for (const option of node.options as readonly z.ZodType[]) {
      const found = schemaAt(option, path);
      if (found) return found;
    }
  }
  return undefined;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let node: z.ZodType = schema;
  for (;;) {
    if (node instanceof z.ZodDefault || node instanceof z.ZodOptional || node instanceof z.ZodNullable) {
      node = node.unwrap() as z.ZodType;
    } else if (node instanceof z.ZodPipe) {
      node = node.in as z.ZodType;
    } else {
      return node;
    }
  }
}
