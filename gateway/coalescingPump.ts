/**
 * Batching for the gateway's background writers and readers: everything requested within one turn
 * of the event loop is served by one round, rounds never overlap, and a request made while a round
 * runs gets one more round right after it. Keeps per-packet work to setting a flag.
 */
import type { Logger } from 'pino';

export interface CoalescingPumpOptions {
  /** One round of work. */
  round(): Promise<void>;
  /** Whether work is left after a round (besides new requests); defaults to none. */
  moreWork?(): boolean;
  log: Logger;
  /** What a failed round means, for the log line. */
  failureMessage: string;
}

export class CoalescingPump {
  readonly #opts: CoalescingPumpOptions;
  #running = false;
  #again = false;
  #scheduled = false;
  #stopped = false;
  #done: Promise<void> = Promise.resolve();

  constructor(opts: CoalescingPumpOptions) {
    this.#opts = opts;
  }

  /** Ask for a round soon; requests of this turn of the event loop share it. */
  request(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#stopped) this.#done = this.#pump();
    });
  }

  /** No more rounds; resolves once the round in progress (if any) has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      do {
        this.#again = false;
        await this.#opts.round();
      } while ((this.#again || (this.#opts.moreWork?.() ?? false)) && !this.#stopped);
    } catch (err) {
      this.#opts.log.warn({ err }, this.#opts.failureMessage);
    } finally {
      this.#running = false;
    }
  }
}
