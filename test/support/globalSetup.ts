/**
 * Vitest global setup: finds (or builds) the Temporal CLI and checks the test PostgreSQL before any
 * test file runs, so a missing tool fails once with a clear message instead of in every file.
 *
 * Values reach the test workers both through vitest's provide/inject (typed, see ProvidedContext
 * below) and through process.env, which forked workers inherit, for code that only reads the env.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { findTemporalCli } from '../../toolchain/temporalCli.ts';

export const DEFAULT_TEST_POSTGRES_URL = 'postgresql://hitloop:hitloop@127.0.0.1:5432/hitloop_test';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalCliPath: string;
    postgresUrl: string;
  }
}

export default async function globalSetup(project: TestProject): Promise<void> {
  const cli = await findTemporalCli({ log: (line) => console.log(`[globalSetup] ${line}`) });
  process.env.HITLOOP_TEST_TEMPORAL_CLI = cli;
  project.provide('temporalCliPath', cli);

  const postgresUrl = process.env.HITLOOP_TEST_POSTGRES_URL || DEFAULT_TEST_POSTGRES_URL;
  await checkPostgres(postgresUrl);
  process.env.HITLOOP_TEST_POSTGRES_URL = postgresUrl;
  project.provide('postgresUrl', postgresUrl);
}

async function checkPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new Error(
      `The test PostgreSQL is not reachable at ${withoutPassword(url)} (HITLOOP_TEST_POSTGRES_URL): ` +
        `${(err as Error).message}. Run scripts/test (it starts PostgreSQL and creates the hitloop role and ` +
        'hitloop_test database; scripts/ensure-postgres does only that), or set HITLOOP_TEST_POSTGRES_URL to a ' +
        'database you can use.',
      { cause: err },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
