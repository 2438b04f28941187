/**
 * hitloop's Prometheus metrics at the lowest layer: provider calls timed and failures counted by the
 * decorator the worker installs on the provider registry, the text format served at /metrics.
 * test/stack.cluster.test.ts scrapes real processes during a run.
 */
import { describe, expect, it } from 'vitest';
import { createMetrics, instrumentProvider } from '../observability/metrics.ts';
import { startMetricsServer } from '../observability/metricsServer.ts';
import { Registry } from '../registry/registry.ts';

interface FakeProvider {
  type: string;
  launch(n: number): Promise<number>;
  fail(): Promise<void>;
  describe(): string;
}

const fakeProvider = (type: string): FakeProvider => ({
  type,
  launch: async (n) => n * 2,
  fail: async () => {
    throw new Error('the provider said no');
  },
  describe: () => `provider ${type}`,
});

/** The value of the sample of `name` carrying every label given (in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('provider call metrics', () => {
  it('time every asynchronous call and count failures, by provider and operation, through Registry.decorate', async () => {
    const metrics = createMetrics({ role: 'worker' });
    const registry = new Registry<FakeProvider>('provider');
    registry.register(fakeProvider('before'));
    registry.decorate((p) => instrumentProvider(p, metrics));
    registry.register(fakeProvider('after'));

    expect(await registry.get('before').launch(2)).toBe(4);
    expect(await registry.get('after').launch(3)).toBe(6);
    await expect(registry.get('after').fail()).rejects.toThrow('the provider said no');
    expect(registry.get('after').describe()).toBe('provider after');

    const text = await metrics.registry.metrics();
    expect(sample(text, 'hitloop_provider_call_seconds_count', { provider: 'before', operation: 'launch', role: 'worker' })).toBe(1);
    expect(sample(text, 'hitloop_provider_call_seconds_count', { provider: 'after', operation: 'launch' })).toBe(1);
    expect(sample(text, 'hitloop_provider_call_seconds_count', { provider: 'after', operation: 'fail' })).toBe(1);
    expect(sample(text, 'hitloop_provider_call_errors_total', { provider: 'after', operation: 'fail' })).toBe(1);
    expect(sample(text, 'hitloop_provider_call_errors_total', { provider: 'after', operation: 'launch' })).toBeUndefined();
    expect(text).not.toContain('operation="describe"');
  });
});

describe('metrics server', () => {
  it('serves the registry in Prometheus text format at /metrics, and nothing else', async () => {
    const metrics = createMetrics({ role: 'worker' });
    metrics.reconnects.inc(3);
    const server = await startMetricsServer(metrics.registry, 0);
    try {
      const answer = await fetch(server.url);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await answer.text();
      expect(body).toContain('hitloop_reconnects_total{role="worker"} 3');
      expect(body).toContain('hitloop_units');
      expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
