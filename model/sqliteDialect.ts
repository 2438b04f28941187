/**
 * The node:sqlite dialect of @mikro-orm/sql, tuned for one database file shared by several
 * processes (worker, gateway, CLI):
 * - every connection sets `busy_timeout`, so a statement waits for another process's write
 *   instead of failing at once with SQLITE_BUSY; a file database is switched to WAL so readers
 *   never wait for the writer; `foreign_keys=ON` (MikroORM also sets it, this covers reconnects);
 * - transactions start with BEGIN IMMEDIATE: a deferred BEGIN that reads and then writes fails
 *   with SQLITE_BUSY without waiting when another process wrote in between, whereas an immediate
 *   one takes the write lock up front and honours busy_timeout.
 */
import { NodeSqliteDialect } from '@mikro-orm/sql';

type KyselyDriver = ReturnType<NodeSqliteDialect['createDriver']>;
type KyselyConnection = Awaited<ReturnType<KyselyDriver['acquireConnection']>>;
type CompiledQuery = Parameters<KyselyConnection['executeQuery']>[0];

/**
 * How long a statement waits for another process's lock. node:sqlite is synchronous, so the wait
 * blocks this process's event loop: long enough for any short write transaction, short enough
 * that a stuck writer surfaces as an error rather than a hang.
 */
export const SQLITE_BUSY_TIMEOUT_MS = 10_000;

function rawQuery(sql: string): CompiledQuery {
  return {
    sql,
    parameters: [],
    query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] },
    queryId: { queryId: `hitloop-sqlite:${sql}` },
  };
}

export class SharedFileSqliteDialect extends NodeSqliteDialect {
  readonly #inMemory: boolean;

  constructor(file: string) {
    super(file);
    this.#inMemory = file === ':memory:';
  }

  override createDriver(): KyselyDriver {
    const inner = super.createDriver();
    const inMemory = this.#inMemory;
    const run = (connection: KyselyConnection, sql: string) => connection.executeQuery(rawQuery(sql));
    return {
      async init(options) {
        await inner.init(options);
        const connection = await inner.acquireConnection(options);
        try {
          // busy_timeout first: switching to WAL needs a lock another process may hold.
          await run(connection, `pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
          if (!inMemory) await run(connection, 'pragma journal_mode = wal');
          await run(connection, 'pragma foreign_keys = on');
        } finally {
          await inner.releaseConnection(connection, options);
        }
      },
      acquireConnection: (options) => inner.acquireConnection(options),
      releaseConnection: (connection, options) => inner.releaseConnection(connection, options),
      async beginTransaction(connection) {
        await run(connection, 'begin immediate');
      },
      commitTransaction: (connection) => inner.commitTransaction(connection),
      rollbackTransaction: (connection) => inner.rollbackTransaction(connection),
      savepoint: inner.savepoint?.bind(inner),
      rollbackToSavepoint: inner.rollbackToSavepoint?.bind(inner),
      releaseSavepoint: inner.releaseSavepoint?.bind(inner),
      destroy: (options) => inner.destroy(options),
    };
  }
}
