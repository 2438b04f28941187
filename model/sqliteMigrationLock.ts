/**
 * A cross-process mutex for migrating one SQLite database file: an exclusive transaction on a
 * sidecar file `<db>.migrate-lock`. The lock cannot live in the database file itself, because the
 * migrator's own connection must be free to write there while the lock is held. SQLite releases
 * the lock when its holder dies, so a crashed migrator never leaves a stale lock behind.
 *
 * Attempts never wait inside SQLite (that would block the event loop, and deadlock two openers in
 * one process); they poll with an async pause instead.
 */
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_INTERVAL_MS = 25;
export const SQLITE_MIGRATION_LOCK_TIMEOUT_MS = 120_000;

export function sqliteMigrationLockPath(databaseFile: string): string {
  return `${databaseFile}.migrate-lock`;
}

function isBusy(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string };
  // SQLITE_BUSY = 5, SQLITE_LOCKED = 6 (primary result codes; extended codes keep them in the low byte)
  return (e.errcode !== undefined && [5, 6].includes(e.errcode & 0xff)) || /database is locked/i.test(e.message ?? '');
}

export async function withSqliteMigrationLock<T>(
  databaseFile: string,
  fn: () => Promise<T>,
  timeoutMs = SQLITE_MIGRATION_LOCK_TIMEOUT_MS,
): Promise<T> {
  const lockPath = sqliteMigrationLockPath(databaseFile);
  const lock = new DatabaseSync(lockPath, { timeout: 0 });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        lock.exec('BEGIN EXCLUSIVE');
        break;
      } catch (err) {
        if (!isBusy(err)) throw err;
        if (Date.now() > deadline) {
          throw new Error(
            `Gave up after ${timeoutMs} ms waiting for the migration lock ${lockPath}: another process has been ` +
              'migrating this SQLite database for that long. Check for a hung hitloop process (worker, gateway, CLI) ' +
              'using this database and stop it.',
            { cause: err },
          );
        }
        await sleep(POLL_INTERVAL_MS);
      }
    }
    try {
      return await fn();
    } finally {
      lock.exec('ROLLBACK');
    }
  } finally {
    lock.close();
  }
}
