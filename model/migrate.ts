/**
 * Migrations: `migrateUp(db)` for code, and a script for people.
 *
 * After changing model/entities.ts, generate a migration for each dialect:
 *
 *   node model/migrate.ts create <short_name>
 *
 * For each dialect this applies the existing migrations to a scratch database (a temp SQLite file;
 * a temp database on the PostgreSQL server at HITLOOP_TEST_POSTGRES_URL, default
 * postgresql://hitloop:hitloop@127.0.0.1:5432/hitloop_test, whose user needs CREATEDB), diffs it
 * against the entity metadata, writes migrations/<dialect>/Migration<timestamp>_<short_name>.ts when
 * there is a difference (formatted with prettier), and drops the scratch database. Read the generated SQL before committing
 * it: a rename comes out as drop + add. `--dialect sqlite|postgresql` limits it to one dialect.
 *
 *   node model/migrate.ts check     exits 1 (printing the SQL) when entities and migrations differ
 *   node model/migrate.ts up [url]  applies pending migrations to url (default HITLOOP_DATABASE_URL
 *                                   or the configured database); openDatabase() also does this.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase, type Database } from './database.ts';
import type { Dialect } from './databaseUrl.ts';
import { migrateUp, migrationsDir } from './migrationRunner.ts';
import { createScratchDatabase } from './scratchDatabase.ts';

export { migrateUp, migrationsDir };
export { withMigrationLock } from './migrationRunner.ts';

const DIALECTS: readonly Dialect[] = ['sqlite', 'postgresql'];

/** The SQL that would bring the database's schema in line with the entities ('' when it matches). */
export async function pendingSchemaChanges(db: Database): Promise<string> {
  const sql = await db.orm.schema.getUpdateSchemaSQL({ wrap: false });
  return sql.trim();
}

/** Opens a scratch database of `dialect` with every existing migration applied. */
async function withMigratedScratch<T>(dialect: Dialect, fn: (db: Database) => Promise<T>): Promise<T> {
  const scratch = await createScratchDatabase(dialect, {
    prefix: 'hitloop_migrate_',
    postgresUrl: process.env.HITLOOP_TEST_POSTGRES_URL || undefined,
  });
  try {
    const db = await openDatabase(scratch.url);
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  } finally {
    await scratch.drop();
  }
}

async function createMigrations(dialects: readonly Dialect[], name: string | undefined): Promise<void> {
  for (const dialect of dialects) {
    await withMigratedScratch(dialect, async (db) => {
      const result = await db.orm.migrator.create(undefined, false, false, name);
      if (result.fileName) await formatWithPrettier(path.join(migrationsDir(dialect), result.fileName));
      console.log(
        result.fileName
          ? `${dialect}: wrote migrations/${dialect}/${result.fileName}`
          : `${dialect}: no changes, the migrations already match the entities`,
      );
    });
  }
}

/** Generated files follow the repository's prettier config, so they pass the format check as written. */
async function formatWithPrettier(file: string): Promise<void> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  const source = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, await prettier.format(source, { ...options, filepath: file }));
}

async function checkMigrations(dialects: readonly Dialect[]): Promise<boolean> {
  let clean = true;
  for (const dialect of dialects) {
    const diff = await withMigratedScratch(dialect, pendingSchemaChanges);
    if (diff) {
      clean = false;
      console.log(`${dialect}: the entities differ from the migrations; run 'node model/migrate.ts create <name>'.\n${diff}`);
    } else {
      console.log(`${dialect}: the migrations match the entities`);
    }
  }
  return clean;
}

async function upCommand(url: string | undefined): Promise<void> {
  const target = url ?? process.env.HITLOOP_DATABASE_URL ?? (await import('../config/settings.ts')).loadSettings().databaseUrl;
  const db = await openDatabase(target, { migrate: false });
  try {
    const applied = await migrateUp(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dialect: { type: 'string' } },
  });
  const [command, arg] = positionals;
  const dialect = values.dialect;
  if (dialect !== undefined && !DIALECTS.includes(dialect as Dialect)) {
    console.error(`--dialect must be one of ${DIALECTS.join(', ')}; got '${dialect}'`);
    return 2;
  }
  const dialects = dialect ? [dialect as Dialect] : DIALECTS;
  switch (command) {
    case 'create':
      if (arg !== undefined && !/^[a-z0-9_]+$/i.test(arg)) {
        console.error(`the migration name may use letters, digits and _ only; got '${arg}'`);
        return 2;
      }
      await createMigrations(dialects, arg);
      return 0;
    case 'check':
      return (await checkMigrations(dialects)) ? 0 : 1;
    case 'up':
      await upCommand(arg);
      return 0;
    default:
      console.error('usage: node model/migrate.ts create <name> | check | up [database-url]  [--dialect sqlite|postgresql]');
      return 2;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
