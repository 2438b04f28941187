/**
 * LISTEN on the outbox channel of PostgreSQL (activities/outbox.ts sends `pg_notify(channel, agentId)`
 * after each message is committed), on a dedicated connection that is reopened with backoff when it
 * drops. After a reopen the caller looks at all its agents again, since notifications were missed.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { OUTBOX_CHANNEL } from '../activities/outbox.ts';

export interface PgNotificationListenerOptions {
  url: string;
  log: Logger;
  onNotify(agentId: string): void;
  onReconnect(): void;
}

export class PgNotificationListener {
  readonly #opts: PgNotificationListenerOptions;
  #client: pg.Client | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs = 200;

  constructor(opts: PgNotificationListenerOptions) {
    this.#opts = opts;
  }

  /** Resolves once listening; a first failure is thrown, later drops are retried. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#opts.url, keepAlive: true });
    client.on('notification', (msg) => {
      if (msg.channel === OUTBOX_CHANNEL && msg.payload) this.#opts.onNotify(msg.payload);
    });
    client.on('error', (err) => {
      this.#opts.log.warn({ err }, 'outbox LISTEN connection failed; reconnecting');
      this.#dropped(client);
    });
    client.on('end', () => this.#dropped(client));
    await client.connect();
    await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
    this.#client = client;
    this.#retryDelayMs = 200;
  }

  #dropped(client: pg.Client): void {
    if (this.#stopped || this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#connect().then(
        () => this.#opts.onReconnect(),
        (err: unknown) => {
          this.#opts.log.warn({ err, retryInMs: this.#retryDelayMs }, 'outbox LISTEN reconnect failed');
          this.#retryDelayMs = Math.min(10_000, this.#retryDelayMs * 2);
          this.#scheduleRetry();
        },
      );
    }, this.#retryDelayMs);
    this.#retryTimer.unref();
  }
}
