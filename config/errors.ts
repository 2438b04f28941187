/**
 * The one error type for bad configuration (task-run config, data sources, user config).
 * It carries every problem found, not just the first, so a user fixes a file in one pass.
 */

export interface ConfigIssue {
  /** Key path as a user writes it: `qualifications[0].comparator`; '' when it is about the whole document. */
  path: string;
  /** What is allowed (`must be an integer >= 0`), or what is wrong when there is no bad value to show. */
  message: string;
  /** The offending value. Absent for a missing key or a problem that is not about one value. */
  value?: unknown;
  /** Line in the source file, when known. */
  line?: number;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  /** The file (or other source) the configuration came from, when known. */
  readonly where: string | undefined;

  constructor(issues: readonly ConfigIssue[], where?: string) {
    super(renderIssues(issues, where));
    this.name = 'ConfigError';
    this.issues = issues;
    this.where = where;
  }

  /** One problem, one error: `ConfigError.single('data.file', 'cannot read ...')`. */
  static single(path: string, message: string, where?: string): ConfigError {
    return new ConfigError([{ path, message }], where);
  }
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}

/** `max_num_concurrent_units: -1 is not allowed: must be an integer >= 0` */
export function renderIssue(issue: ConfigIssue): string {
  const head = issue.path === '' ? '' : `${issue.path}: `;
  const body = 'value' in issue ? `${showValue(issue.value)} is not allowed: ${issue.message}` : issue.message;
  const line = issue.line === undefined ? '' : ` (line ${issue.line})`;
  return `${head}${body}${line}`;
}

function renderIssues(issues: readonly ConfigIssue[], where: string | undefined): string {
  const lines = issues.map(renderIssue);
  return where === undefined ? lines.join('\n') : [`${where}: invalid configuration`, ...lines].join('\n');
}

/** A short, unambiguous rendering of a value: strings quoted, long values cut. */
export function showValue(value: unknown): string {
  let text: string;
  if (value === undefined) text = 'undefined';
  else if (typeof value === 'bigint') text = `${value}`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Render a key path: `['qualifications', 0, 'comparator']` -> `qualifications[0].comparator`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/** The closest candidate to a mistyped word, if one is close enough to be a plausible typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(best.length / 3));
  if (bestDistance <= limit) return best;
  // `max_units` for `max_screening_units`: every word of the typo appears in one key.
  const words = lower.split(/[_\-.]+/).filter((w) => w !== '');
  if (words.length < 2) return undefined;
  const containing = candidates.filter((c) => {
    const candidateWords = c.toLowerCase().split(/[_\-.]+/);
    return words.every((w) => candidateWords.includes(w));
  });
  return containing.length === 1 ? containing[0] : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
