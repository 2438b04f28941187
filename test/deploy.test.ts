/**
 * The deployment files, checked by the tools that read them: docker-compose.yml by `docker-compose
 * config` (Debian's docker-compose package, installed by scripts/install-system-packages: no
 * container engine is needed to validate), the HAProxy configs by `haproxy -c`, and the Grafana
 * dashboard against the metrics the processes really export.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../observability/metrics.ts';
import { ensureSelfSignedCertificate, findHaproxy, haproxyConfig } from '../stack/proxy.ts';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');

function composeCommand(): string {
  for (const candidate of ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose']) if (fs.existsSync(candidate)) return candidate;
  throw new Error('docker-compose is not installed; run scripts/install-system-packages (Debian package docker-compose)');
}

describe('docker-compose.yml', () => {
  it('validates with docker-compose config, with every service the production shape needs', { timeout: 60_000 }, async () => {
    const { stdout } = await run(composeCommand(), ['-f', path.join(REPO, 'docker-compose.yml'), 'config']);
    const config = YAML.parse(stdout) as { services: Record<string, { environment?: Record<string, string>; command?: string[]; deploy?: { replicas?: number } }> };
    expect(Object.keys(config.services).sort()).toEqual(
      ['deps', 'gateway', 'postgres', 'proxy', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-ui', 'tls', 'worker'].sort(),
    );
    expect(config.services.gateway!.environment!.HITLOOP_GATEWAY_HOST).toBe('0.0.0.0');
    expect(config.services['temporal-namespace']!.command).toEqual(['node', 'stack/temporalCluster.ts', 'register']);
    expect(config.services.worker!.deploy!.replicas).toBeGreaterThan(1);
    expect(config.services.gateway!.deploy!.replicas).toBeGreaterThan(1);
    // No password is written into the file: secrets come from files.
    expect(stdout).not.toMatch(/PASSWORD:\s*\S/);
  });

  it('is refused by the same check when broken (the check can fail)', { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-compose-'));
    const broken = path.join(dir, 'docker-compose.yml');
    fs.writeFileSync(broken, fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8').replace('depends_on:', 'depends_onn:'));
    await expect(run(composeCommand(), ['-f', broken, 'config', '-q'])).rejects.toThrow(/depends_onn/);
  });
});

describe('HAProxy configs', () => {
  it('the one `hitloop stack` writes and the one docker-compose.yml mounts both pass haproxy -c', { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-haproxy-'));
    const { pemFile } = await ensureSelfSignedCertificate(dir);
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, haproxyConfig({ host: '127.0.0.1', port: 18443, pemFile, gatewayPorts: [13001, 13002] }));
    await run(findHaproxy(), ['-c', '-q', '-f', file]);
    // The compose one reads its certificate from /tls: point it at the generated one.
    const composed = fs.readFileSync(path.join(REPO, 'deploy', 'haproxy', 'haproxy.cfg'), 'utf8').replace('/tls/haproxy.pem', pemFile);
    const composedFile = path.join(dir, 'compose-haproxy.cfg');
    fs.writeFileSync(composedFile, composed);
    await run(findHaproxy(), ['-c', '-q', '-f', composedFile]);
  });
});

describe('Grafana dashboard', () => {
  it('queries only metrics that hitloop processes export', () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(REPO, 'deploy', 'grafana', 'hitloop.json'), 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const exported = new Set(createMetrics({ role: 'worker' }).registry.getMetricsAsArray().map((m) => m.name));
    const used = dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/\b(hitloop_[a-z_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]!)));
    expect(used.length).toBeGreaterThan(5);
    for (const name of used) expect(exported.has(name), `${name} is not exported`).toBe(true);
  });
});
