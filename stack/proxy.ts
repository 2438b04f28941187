/**
 * The TLS-terminating reverse proxy in front of the gateways: HAProxy from Debian's packages
 * (scripts/install-system-packages). It serves https:// and wss:// on one port, passes the WebSocket
 * upgrade through, balances new connections round-robin over the gateways that answer `/readyz`
 * (no sticky sessions: an agent may resume on any gateway) and keeps established sockets open.
 * The certificate is self-signed, made with openssl on first use and kept in the state directory.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ManagedProcess } from '../chaos/managedProcess.ts';
import { acceptsConnections } from '../toolchain/ports.ts';

export interface ProxyOptions {
  stateDir: string;
  /** Public HTTPS port. */
  port: number;
  /** Interface to listen on (127.0.0.1 unless the proxy faces a network). */
  host?: string;
  /** Ports of the gateways on 127.0.0.1. */
  gatewayPorts: number[];
}

export interface Proxy {
  process: ManagedProcess;
  url: string;
  /** The certificate clients must trust (NODE_EXTRA_CA_CERTS for Node clients). */
  certificateFile: string;
}

export function findHaproxy(): string {
  for (const candidate of ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy']) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('HAProxy is not installed; run scripts/install-system-packages (it installs the Debian package `haproxy`)');
}

/** A self-signed certificate for localhost and 127.0.0.1, made once; returns the cert and the combined PEM HAProxy reads. */
export async function ensureSelfSignedCertificate(
  dir: string,
  log: (line: string) => void = () => {},
): Promise<{ certificateFile: string; pemFile: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const certificateFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const pemFile = path.join(dir, 'haproxy.pem');
  if (!fs.existsSync(pemFile)) {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '825',
      '-keyout',
      keyFile,
      '-out',
      certificateFile,
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    fs.writeFileSync(pemFile, fs.readFileSync(certificateFile, 'utf8') + fs.readFileSync(keyFile, 'utf8'), { mode: 0o600 });
    log(`TLS: generated a self-signed certificate for localhost in ${certificateFile}`);
  }
  return { certificateFile, pemFile };
}

export function haproxyConfig(opts: { host: string; port: number; pemFile: string; gatewayPorts: number[] }): string {
  const servers = opts.gatewayPorts.map((port, i) => `  server gateway-${i + 1} 127.0.0.1:${port} check inter 1s fall 2 rise 1`);
  return [
    'global',
    '  log stdout format raw local0 info',
    '',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    // A WebSocket lives for a whole session; the gateway's pings keep it from idling out sooner.
    '  timeout tunnel 2h',
    '  option redispatch',
    '  retries 3',
    '',
    'frontend https',
    `  bind ${opts.host}:${opts.port} ssl crt ${opts.pemFile}`,
    '  http-request set-header X-Forwarded-Proto https',
    '  option forwardfor',
    '  default_backend gateways',
    '',
    'backend gateways',
    '  balance roundrobin',
    // Only gateways whose database and Temporal answer get new connections.
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...servers,
    '',
  ].join('\n');
}

export async function prepareProxy(opts: ProxyOptions, log: (line: string) => void = () => {}): Promise<Proxy> {
  const dir = path.join(opts.stateDir, 'proxy');
  const { certificateFile, pemFile } = await ensureSelfSignedCertificate(path.join(opts.stateDir, 'tls'), log);
  fs.mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'haproxy.cfg');
  const host = opts.host ?? '127.0.0.1';
  fs.writeFileSync(configFile, haproxyConfig({ host, port: opts.port, pemFile, gatewayPorts: opts.gatewayPorts }));
  const haproxy = findHaproxy();
  await promisify(execFile)(haproxy, ['-c', '-q', '-f', configFile]).catch((err: unknown) => {
    throw new Error(`HAProxy rejects its config ${configFile}: ${String((err as { stderr?: string }).stderr ?? err).trim()}`, {
      cause: err,
    });
  });
  fs.mkdirSync(path.join(opts.stateDir, 'logs'), { recursive: true });
  const process_ = new ManagedProcess({
    name: 'proxy',
    command: haproxy,
    // -db: stay in the foreground, so Ctrl-C and the harness can stop it like any other child.
    args: ['-db', '-f', configFile],
    env: process.env,
    logFile: path.join(opts.stateDir, 'logs', 'proxy.log'),
    readyProbe: () => acceptsConnections(opts.port, host === '0.0.0.0' ? '127.0.0.1' : host),
    readyTimeoutMs: 30_000,
  });
  const shownHost = host === '0.0.0.0' || host === '127.0.0.1' ? 'localhost' : host;
  return { process: process_, url: `https://${shownHost}:${opts.port}`, certificateFile };
}
