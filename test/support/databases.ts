/**
 * A fresh, empty database per caller: a SQLite file in a new temp directory, or a new database
 * `hitloop_t_<random>` on the PostgreSQL server at HITLOOP_TEST_POSTGRES_URL (default
 * postgresql://hitloop:hitloop@127.0.0.1:5432/hitloop_test; its user needs CREATEDB).
 * `drop()` removes it; call it in afterAll.
 */
import { createScratchDatabase, DEFAULT_SCRATCH_POSTGRES_URL } from '../../model/scratchDatabase.ts';

export type TestDialect = 'postgresql' | 'sqlite';

export const TEST_DIALECTS: readonly TestDialect[] = ['sqlite', 'postgresql'];

export function testPostgresUrl(): string {
  return process.env.HITLOOP_TEST_POSTGRES_URL || DEFAULT_SCRATCH_POSTGRES_URL;
}

export async function createTestDatabase(dialect: TestDialect): Promise<{ url: string; drop(): Promise<void> }> {
  return createScratchDatabase(dialect, {
    prefix: dialect === 'postgresql' ? 'hitloop_t_' : 'hitloop-t-',
    postgresUrl: testPostgresUrl(),
  });
}
