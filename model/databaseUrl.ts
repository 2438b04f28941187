/**
 * Reads HITLOOP_DATABASE_URL-style strings: the scheme picks the dialect.
 */

export type Dialect = 'postgresql' | 'sqlite';

export type DatabaseTarget =
  { dialect: 'sqlite'; /** absolute path, or ':memory:' */ file: string } | { dialect: 'postgresql'; url: string; database: string };

export const ACCEPTED_DATABASE_URLS =
  'sqlite:///absolute/path/to/file.db, sqlite::memory:, or postgresql://user:password@host:port/database ' + '(postgres:// also works)';

export class DatabaseUrlError extends Error {
  constructor(url: string, problem: string) {
    super(`HITLOOP_DATABASE_URL ${JSON.stringify(redactDatabaseUrl(url))} ${problem}. ` + `Accepted forms: ${ACCEPTED_DATABASE_URLS}.`);
    this.name = 'DatabaseUrlError';
  }
}

export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url === 'sqlite::memory:') return { dialect: 'sqlite', file: ':memory:' };
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length);
    if (!rest.startsWith('///')) {
      throw new DatabaseUrlError(url, 'is not an absolute SQLite file URL (it needs three slashes: sqlite:///path)');
    }
    const file = decodeURIComponent(rest.slice(2));
    if (file === '/' || file.endsWith('/')) throw new DatabaseUrlError(url, 'names a directory, not a database file');
    return { dialect: 'sqlite', file };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new DatabaseUrlError(url, 'is not a valid URL');
    }
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
    if (!database) throw new DatabaseUrlError(url, 'names no database (add /database_name after host:port)');
    return { dialect: 'postgresql', url, database };
  }
  throw new DatabaseUrlError(url, 'has an unknown scheme');
}

/** The URL with its password masked, for messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@');
  }
}
