/**
 * Throwaway databases, for tests and for generating migrations: a SQLite file in a fresh temp
 * directory, or a new database on a PostgreSQL server the caller can CREATE DATABASE on.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MikroORM } from '@mikro-orm/sql';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type { Dialect } from './databaseUrl.ts';
import { redactDatabaseUrl } from './databaseUrl.ts';
import { ALL_ENTITIES } from './entities.ts';

export const DEFAULT_SCRATCH_POSTGRES_URL = 'postgresql://hitloop:hitloop@127.0.0.1:5432/hitloop_test';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface ScratchDatabaseOptions {
  /** Database name prefix (PostgreSQL) or temp directory prefix (SQLite); a random suffix follows. */
  prefix: string;
  /** Any database on the server to create the scratch database on (its user needs CREATEDB). */
  postgresUrl?: string;
}

export async function createScratchDatabase(dialect: Dialect, opts: ScratchDatabaseOptions): Promise<ScratchDatabase> {
  const suffix = crypto.randomBytes(5).toString('hex');
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${opts.prefix}${suffix}-`));
    return {
      url: `sqlite://${path.join(dir, 'hitloop.db')}`,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const serverUrl = opts.postgresUrl ?? DEFAULT_SCRATCH_POSTGRES_URL;
  const name = `${opts.prefix}${suffix}`;
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid scratch database name '${name}': use [a-z0-9_] only`);
  await onServer(serverUrl, `create database "${name}"`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    // WITH (FORCE) ends sessions a failed test may have left open (PostgreSQL 13+).
    drop: () => dropWhenAutovacuumLetsGo(serverUrl, name),
  };
}

/**
 * WITH (FORCE) must be allowed to end every session on the database, and an autovacuum worker
 * busy there belongs to no role: without pg_signal_backend the drop fails until it is done.
 */
async function dropWhenAutovacuumLetsGo(serverUrl: string, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await onServer(serverUrl, `drop database if exists "${name}" with (force)`);
    } catch (err) {
      if (attempt >= 20 || !/member of pg_signal_backend/.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const orm = await MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: serverUrl,
    entities: [...ALL_ENTITIES],
  }).catch((err: unknown) => {
    throw new Error(
      `Cannot reach the PostgreSQL server at ${redactDatabaseUrl(serverUrl)} to run "${sql}": ${(err as Error).message}. ` +
        'Start it (scripts/ensure-postgres) or point HITLOOP_TEST_POSTGRES_URL at a server whose user has CREATEDB.',
      { cause: err },
    );
  });
  try {
    await orm.em.getConnection().execute(sql);
  } finally {
    await orm.close();
  }
}
