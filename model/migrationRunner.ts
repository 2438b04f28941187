/**
 * Where each dialect's migrations live, how the MikroORM migrator is configured, and how pending
 * migrations are applied safely while other processes open the same database at the same time.
 */
import path from 'node:path';
import type { MigrationsOptions } from '@mikro-orm/core';
import type { Dialect } from './databaseUrl.ts';
import type { Database } from './database.ts';
import { withSqliteMigrationLock } from './sqliteMigrationLock.ts';

export const MIGRATIONS_TABLE = 'mikro_orm_migrations';

/**
 * Advisory lock key for migrating a PostgreSQL database (an arbitrary constant: "hitloop" in ASCII).
 * Held in a transaction of its own, it serialises every migrator on the database.
 */
export const POSTGRES_MIGRATION_LOCK_KEY = 0x686974_6c6f6f70n;

export function migrationsDir(dialect: Dialect): string {
  return path.resolve(import.meta.dirname, '..', 'migrations', dialect);
}

export function migratorOptions(dialect: Dialect, opts: { silent: boolean }): MigrationsOptions {
  const dir = migrationsDir(dialect);
  return {
    tableName: MIGRATIONS_TABLE,
    path: dir,
    pathTs: dir,
    glob: 'Migration*.{ts,js}',
    emit: 'ts',
    // All pending migrations of one run commit together or not at all.
    transactional: true,
    allOrNothing: true,
    // The migrations are the schema; model/migrate.ts diffs a migrated scratch database instead.
    snapshot: false,
    snapshotOnMigrate: false,
    silent: opts.silent,
  };
}

/** Applies pending migrations; returns the names of those applied (none when up to date). */
export async function migrateUp(db: Database): Promise<string[]> {
  return withMigrationLock(db, async () => {
    const applied = await db.orm.migrator.up();
    return applied.map((m) => m.name);
  });
}

/** Runs `fn` while no other process (or Database in this process) migrates the same database. */
export async function withMigrationLock<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  if (db.dialect === 'postgresql') {
    // The lock belongs to a transaction on one pooled connection and lasts until it ends; the
    // migrator meanwhile works on other connections of the pool.
    return db.em().transactional(async (em) => {
      await em.execute(`select pg_advisory_xact_lock(${POSTGRES_MIGRATION_LOCK_KEY})`);
      return fn();
    });
  }
  const { target } = db;
  if (target.dialect !== 'sqlite' || target.file === ':memory:') return fn(); // private to this connection
  return withSqliteMigrationLock(target.file, fn);
}
