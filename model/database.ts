/**
 * Opens hitloop's database from a HITLOOP_DATABASE_URL-style string and, by default, brings its
 * schema up to date with the migrations in migrations/<dialect>/ (never by schema sync).
 *
 *   const db = await openDatabase(settings.databaseUrl);
 *   const em = db.em();            // a fresh EntityManager fork per unit of work
 *   ...
 *   await db.close();
 *
 * Several processes (worker, gateway, CLI) may open one database at the same time: migrations are
 * applied under a lock (see model/migrationRunner.ts), and a SQLite file is shared with WAL,
 * busy_timeout and BEGIN IMMEDIATE transactions (see model/sqliteDialect.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, type LoggerOptions } from '@mikro-orm/core';
import { MikroORM, SqliteDriver, type AbstractSqlDriver, type SqlEntityManager } from '@mikro-orm/sql';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { ALL_ENTITIES } from './entities.ts';
import { parseDatabaseUrl, redactDatabaseUrl, type DatabaseTarget, type Dialect } from './databaseUrl.ts';
import { migrateUp, migratorOptions } from './migrationRunner.ts';
import { SharedFileSqliteDialect } from './sqliteDialect.ts';

export type { Dialect, DatabaseTarget };
export { DatabaseUrlError, parseDatabaseUrl, redactDatabaseUrl } from './databaseUrl.ts';

/** The EntityManager every module should type its `em` parameters with (both dialects). */
export type EntityManager = SqlEntityManager;
export type Orm = MikroORM<AbstractSqlDriver, SqlEntityManager>;

export interface Database {
  orm: Orm;
  /** A fresh fork: its own identity map and unit of work. */
  em(): EntityManager;
  dialect: Dialect;
  /** Where the database is (file or server), parsed from the URL. */
  target: DatabaseTarget;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  /** Log every query and the migrator's progress. */
  debug?: boolean;
  /** Told of every statement sent (BEGIN and COMMIT included), with or without `debug`: to count round trips. */
  onQuery?: (sql: string) => void;
}

/** MikroORM's logger, also telling `onQuery` of each statement (MikroORM hands every one to `logQuery`). */
function queryObservingLogger(onQuery: (sql: string) => void) {
  return (options: LoggerOptions) =>
    new (class extends DefaultLogger {
      override logQuery(context: Parameters<DefaultLogger['logQuery']>[0]): void {
        // Slow-query reports repeat a statement already counted.
        if (context.namespace !== 'slow-query') onQuery(context.query);
        super.logQuery(context);
      }
    })(options);
}

export async function openDatabase(url: string, opts: OpenDatabaseOptions = {}): Promise<Database> {
  const target = parseDatabaseUrl(url);
  const debug = opts.debug ?? false;
  const common = {
    entities: [...ALL_ENTITIES],
    extensions: [Migrator],
    migrations: migratorOptions(target.dialect, { silent: !debug }),
    debug,
    ...(opts.onQuery ? { loggerFactory: queryObservingLogger(opts.onQuery) } : {}),
  };

  let orm: Orm;
  if (target.dialect === 'sqlite') {
    if (target.file !== ':memory:') fs.mkdirSync(path.dirname(target.file), { recursive: true });
    orm = await MikroORM.init<AbstractSqlDriver, SqlEntityManager>({
      ...common,
      driver: SqliteDriver,
      dbName: target.file,
      driverOptions: new SharedFileSqliteDialect(target.file),
    });
  } else {
    orm = await MikroORM.init<AbstractSqlDriver, SqlEntityManager>({
      ...common,
      driver: PostgreSqlDriver,
      clientUrl: target.url,
      // The database must exist: creating it here would race between processes opening it at once.
      ensureDatabase: false,
    });
    // MikroORM.init does not fail on a bad connection; the first query would, with a vaguer message.
    try {
      await orm.em.getConnection().execute('select 1');
    } catch (err) {
      await orm.close().catch(() => {});
      throw new Error(
        `Cannot connect to PostgreSQL at ${redactDatabaseUrl(target.url)} (HITLOOP_DATABASE_URL): ${(err as Error).message}. ` +
          'Check that the server is running and that the user, password and database exist.',
        { cause: err },
      );
    }
  }

  const db: Database = {
    orm,
    em: () => orm.em.fork(),
    dialect: target.dialect,
    target,
    close: () => orm.close(),
  };
  if (opts.migrate ?? true) {
    try {
      await migrateUp(db);
    } catch (err) {
      await orm.close().catch(() => {});
      throw new Error(`Migrating the ${target.dialect} database ${redactDatabaseUrl(url)} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return db;
}
