/**
 * The node:sqlite dialect of @mikro-orm/sql, tuned for one database file shared by several
 * processes (worker, gateway, CLI):
 * - every connection sets `busy_timeout`, so a statement waits for another process's write
 *   instead of failing at once with SQLITE_BUSY; a file database is switched to WAL so readers
 *   never wait for the writer; `foreign_keys=ON` (MikroORM also sets it, this covers reconnects);
 * - transactions start with BEGIN IMMEDIATE: a deferred BEGIN that reads and then writes fails
 *   with SQLITE_BUSY without waiting when another process wrote in between, whereas an immediate
 *   one takes the write lock up front and honours busy_timeout;
 * - one queue per file and process: every use of a connection (one statement, or a transaction from
 *   BEGIN to COMMIT) waits its turn, without blocking the event loop. node:sqlite is synchronous, so
 *   without it a statement waiting for the file's lock held by another handle of the same process
 *   (`hitloop dev` opens one for its worker, gateway and operator) blocks the loop for the whole
 *   busy_timeout while the holder, in the same loop, cannot finish, and then fails with `database is
 *   locked`. busy_timeout is left for other processes, whose holders do go on.
 */
import path from 'node:path';
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

/** A first-come, first-served lock whose waiters wait without blocking the event loop. */
class TurnQueue {
  #tail: Promise<void> = Promise.resolve();

  /** Resolves when it is the caller's turn, with the function that ends it (call it once). */
  async take(): Promise<() => void> {
    let end!: () => void;
    const turn = new Promise<void>((resolve) => (end = resolve));
    const previous = this.#tail;
    this.#tail = previous.then(() => turn);
    await previous;
    return end;
  }
}

/** One queue per database file in this process, whichever handle (MikroORM instance) uses it. */
const queuesByFile = new Map<string, TurnQueue>();

function queueFor(file: string): TurnQueue {
  let queue = queuesByFile.get(file);
  if (!queue) {
    queue = new TurnQueue();
    queuesByFile.set(file, queue);
  }
  return queue;
}

export class SharedFileSqliteDialect extends NodeSqliteDialect {
  readonly #inMemory: boolean;
  readonly #queue: TurnQueue;

  constructor(file: string) {
    super(file);
    this.#inMemory = file === ':memory:';
    // Each in-memory database is a database of its own: its queue is its own too.
    this.#queue = this.#inMemory ? new TurnQueue() : queueFor(path.resolve(file));
  }

  override createDriver(): KyselyDriver {
    const inner = super.createDriver();
    const inMemory = this.#inMemory;
    const queue = this.#queue;
    // The end of each lent connection's turn: Kysely lends one per statement, or per transaction.
    const turnEnds = new WeakMap<KyselyConnection, () => void>();
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
      async acquireConnection(options) {
        const endTurn = await queue.take();
        try {
          const connection = await inner.acquireConnection(options);
          // A handle of its own per turn: the single underlying connection is lent to one caller at a time.
          const lent: KyselyConnection = {
            executeQuery: (query) => connection.executeQuery(query),
            streamQuery: (query, chunkSize) => connection.streamQuery(query, chunkSize),
          };
          turnEnds.set(lent, endTurn);
          return lent;
        } catch (err) {
          endTurn();
          throw err;
        }
      },
      async releaseConnection(connection, options) {
        try {
          await inner.releaseConnection(connection, options);
        } finally {
          turnEnds.get(connection)?.();
          turnEnds.delete(connection);
        }
      },
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
