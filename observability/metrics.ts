/**
 * hitloop's own Prometheus metrics (prom-client), served at `/metrics` by every worker and gateway.
 *
 * Counters and histograms count what this process saw (registrations, refusals, reconnects, latency,
 * provider calls); Prometheus sums them over processes. Gauges of stored state (units by status per
 * run, spend per run, outbox lag) are read from the database at scrape time, so every process
 * reports the same truth and none has to agree with another. The Temporal SDK's own metrics come
 * from its runtime (observability/telemetry.ts), on a port of their own.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../model/database.ts';
import { FINAL_TASK_RUN_STATUSES, PAYABLE_UNIT_STATUSES } from '../model/status.ts';

export interface HitloopMetrics {
  registry: Registry;
  registrations: Counter<'outcome'>;
  refusals: Counter<'reason'>;
  registerToAgent: Histogram;
  reconnects: Counter;
  providerCallSeconds: Histogram<'provider' | 'operation'>;
  providerCallErrors: Counter<'provider' | 'operation'>;
}

/** Whose process this is: `worker` or `gateway` (a label on every series). */
export function createMetrics(opts: { role: 'worker' | 'gateway'; db?: Database }): HitloopMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ role: opts.role });
  collectDefaultMetrics({ register: registry, prefix: 'hitloop_' });
  const metrics: HitloopMetrics = {
    registry,
    registrations: new Counter({
      name: 'hitloop_registrations_total',
      help: 'Register packets answered, by outcome (assigned, onboarding, refused, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'hitloop_refusals_total',
      help: 'Registrations refused, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    registerToAgent: new Histogram({
      name: 'hitloop_register_to_agent_seconds',
      help: 'From a register packet to the agent it was given, as the gateway saw it',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    reconnects: new Counter({ name: 'hitloop_reconnects_total', help: 'Agents resumed on a new socket', registers: [registry] }),
    providerCallSeconds: new Histogram({
      name: 'hitloop_provider_call_seconds',
      help: 'Latency of crowd-provider calls, by provider and operation',
      labelNames: ['provider', 'operation'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
      registers: [registry],
    }),
    providerCallErrors: new Counter({
      name: 'hitloop_provider_call_errors_total',
      help: 'Crowd-provider calls that failed, by provider and operation',
      labelNames: ['provider', 'operation'],
      registers: [registry],
    }),
  };
  registerStoredStateGauges(registry, opts.db);
  return metrics;
}

/**
 * Gauges read from the database when scraped (empty without one); a failed read leaves them empty
 * rather than failing the scrape.
 */
function registerStoredStateGauges(registry: Registry, db: Database | undefined): void {
  const finals = [...FINAL_TASK_RUN_STATUSES];
  const notEnded = `r.status not in (${finals.map(() => '?').join(', ')})`;
  const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> =>
    db ? ((await db.em().getConnection().execute(sql, params, 'all')) as T[]) : [];
  new Gauge({
    name: 'hitloop_units',
    help: 'Units by status, per run that is not ended',
    labelNames: ['run_id', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await query<{ run: string; status: string; n: number | string }>(
        `select u.task_run_id as run, u.status as status, count(*) as n from unit u join task_run r on r.id = u.task_run_id where ${notEnded} group by u.task_run_id, u.status`,
        finals,
      ).catch(() => []);
      for (const row of rows) this.set({ run_id: row.run, status: row.status }, Number(row.n));
    },
  });
  const payable = [...PAYABLE_UNIT_STATUSES];
  new Gauge({
    name: 'hitloop_spend',
    help: 'Pay of payable units per run not ended (bonuses are in hitloop status)',
    labelNames: ['run_id'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await query<{ run: string; pay: number | string | null }>(
        `select u.task_run_id as run, sum(u.pay) as pay from unit u join task_run r on r.id = u.task_run_id where ${notEnded} and u.status in (${payable.map(() => '?').join(', ')}) group by u.task_run_id`,
        [...finals, ...payable],
      ).catch(() => []);
      for (const row of rows) this.set({ run_id: row.run }, Number(row.pay ?? 0));
    },
  });
  new Gauge({
    name: 'hitloop_outbox_lag_seconds',
    help: 'Age of the oldest message not yet acknowledged by its agent (0 when none waits)',
    registers: [registry],
    async collect() {
      const rows = await query<{ oldest: string | number | Date | null }>(
        'select min(created_at) as oldest from outbox_message where acked_at is null',
      ).catch(() => []);
      const oldest = rows[0]?.oldest;
      this.set(
        oldest == null
          ? 0
          : Math.max(
              0,
              (Date.now() - new Date(typeof oldest === 'string' && /^\d+$/.test(oldest) ? Number(oldest) : oldest).getTime()) / 1000,
            ),
      );
    },
  });
}

/**
 * The provider with every asynchronous method timed into `hitloop_provider_call_seconds` and its
 * failures counted (`providers.decorate((p) => instrumentProvider(p, metrics))`).
 */
export function instrumentProvider<T extends { type: string }>(provider: T, metrics: HitloopMetrics): T {
  return new Proxy(provider, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = value.apply(target, args);
        if (!(result instanceof Promise)) return result;
        const labels = { provider: target.type, operation: prop };
        const end = metrics.providerCallSeconds.startTimer(labels);
        return result.then(
          (answer: unknown) => {
            end();
            return answer;
          },
          (err: unknown) => {
            end();
            metrics.providerCallErrors.inc(labels);
            throw err;
          },
        );
      };
    },
  });
}
