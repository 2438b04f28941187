/**
 * The gateway's HTTP side, on the same port as its WebSocket: liveness and readiness probes, the
 * task page of each run (rendered by the run's blueprint) and the page's static assets.
 *
 *   GET /healthz             200 while the process runs
 *   GET /readyz              200 when the database and Temporal answer, else 503 (with why)
 *   GET /metrics             Prometheus metrics (observability/metrics.ts)
 *   GET /task/<runId>?...    the task page; the query carries the provider's worker parameters
 *   GET /assets/<file>       client JS and CSS (gateway/assets/)
 *   POST /providers/<name>/webhook   a provider's event callbacks (signed; see the provider's webhook.ts)
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { unstorableText } from '../model/storableJson.ts';
import { newErrorId } from './protocol.ts';
import type { ConsoleHttp } from '../api/server.ts';
import type { Registry } from 'prom-client';
import type { RunCatalog } from './runCatalog.ts';
import { completionLinkProblem } from '../providers/completionLinks.ts';
import type { WebhookHandler } from '../providers/prolific/webhook.ts';

const ASSETS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every asset, read once: they only change with the code. */
function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(ASSETS_DIR)) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (!type) continue;
    const body = readFileSync(path.join(ASSETS_DIR, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return assets;
}

export interface Readiness {
  /** Null when ready, else why not. */
  check(): Promise<string | null>;
}

export interface HttpRoutesOptions {
  runs: RunCatalog;
  readiness: Readiness;
  log: Logger;
  /** The operator console and JSON API (`/admin`, `/api/v1/...`), routed on their own. */
  console?: ConsoleHttp;
  /** Checks the signed return address some providers put in task links (providers/completionLinks.ts). */
  secret?: string;
  /** Webhook handlers by provider name. */
  webhooks?: Readonly<Record<string, WebhookHandler>>;
  /** Served at /metrics in Prometheus text format. */
  metrics?: Registry;
}

/** Webhook bodies are small JSON events; anything bigger is refused unread. */
const MAX_WEBHOOK_BYTES = 64 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_WEBHOOK_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  // Task links carry the worker's signed parameters: do not leak them to other sites.
  'referrer-policy': 'no-referrer',
} as const;

/** Longest run id a link may carry (as the protocol's `runId`). */
const MAX_RUN_ID_LENGTH = 100;

/**
 * The task page's content policy: its own scripts, styles and socket only (inline styles for
 * custom templates), images and media from anywhere a unit's data may point, and framing only by
 * the sites the run's provider names (docs/protocol.md "Origins and framing").
 */
export function taskPagePolicy(frameAncestors: readonly string[] | undefined): Record<string, string> {
  const ancestors = frameAncestors && frameAncestors.length > 0 ? frameAncestors.join(' ') : "'none'";
  // The sites that frame the page are the sites it reports back to (MTurk's externalSubmit form).
  const formTargets = frameAncestors && frameAncestors.length > 0 ? ` ${frameAncestors.join(' ')}` : '';
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    // Item data points at images and media wherever the researcher keeps them (in-house: often http).
    "img-src 'self' data: http: https:",
    "media-src 'self' data: http: https:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    `form-action 'self'${formTargets}`,
    `frame-ancestors ${ancestors}`,
  ].join('; ');
  return { 'content-security-policy': csp, ...(ancestors === "'none'" ? { 'x-frame-options': 'DENY' } : {}) };
}

export function createHttpHandler(opts: HttpRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const assets = loadAssets();

  function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...headers });
    res.end(body);
  }
  const sendJson = (res: ServerResponse, status: number, value: unknown): void =>
    send(res, status, 'application/json', JSON.stringify(value), { 'cache-control': 'no-store' });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (opts.console?.handles(req)) return opts.console.serve(req, res);
    const webhook = /^\/providers\/([^/]+)\/webhook$/.exec((req.url ?? '/').split('?', 1)[0]!);
    if (webhook && req.method === 'POST') {
      const handler = opts.webhooks?.[webhook[1]!];
      if (!handler) return sendJson(res, 404, { error: `no webhook for provider ${webhook[1]}` });
      const body = await readBody(req);
      if (!body) return sendJson(res, 413, { error: `a webhook body may be at most ${MAX_WEBHOOK_BYTES} bytes` });
      const answer = await handler({ headers: req.headers, body });
      return sendJson(res, answer.status, answer.body);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD are served here\n', { allow: 'GET, HEAD' });
      return;
    }
    const pathname = (req.url ?? '/').split('?', 1)[0]!;
    if (pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (pathname === '/readyz') {
      const problem = await opts.readiness.check();
      return sendJson(res, problem ? 503 : 200, problem ? { status: 'not ready', problem } : { status: 'ready' });
    }
    if (pathname === '/metrics' && opts.metrics) {
      return send(res, 200, opts.metrics.contentType, await opts.metrics.metrics(), { 'cache-control': 'no-store' });
    }
    if (pathname.startsWith('/assets/')) {
      const asset = assets.get(pathname.slice('/assets/'.length));
      if (!asset) return send(res, 404, 'text/plain; charset=utf-8', `no asset ${pathname}\n`);
      if (req.headers['if-none-match'] === asset.etag) {
        res.writeHead(304, { etag: asset.etag });
        res.end();
        return;
      }
      return send(res, 200, asset.type, asset.body, { etag: asset.etag, 'cache-control': 'public, max-age=300' });
    }
    const task = /^\/task\/([^/]+)\/?$/.exec(pathname);
    if (task) {
      let runId: string;
      try {
        runId = decodeURIComponent(task[1]!);
      } catch {
        return send(res, 400, 'text/plain; charset=utf-8', 'the run id in this link is not valid\n');
      }
      // Never a run id (a NUL, a broken surrogate, too long): refused before any database look-up.
      if (runId.length === 0 || runId.length > MAX_RUN_ID_LENGTH || unstorableText(runId) !== null) {
        return send(res, 400, 'text/plain; charset=utf-8', 'the run id in this link is not valid\n');
      }
      const problem = opts.secret ? completionLinkProblem(opts.secret, runId, new URLSearchParams((req.url ?? '').split('?')[1] ?? '')) : null;
      if (problem) return send(res, 400, 'text/plain; charset=utf-8', `${problem}; open the task from your provider again\n`);
      const run = await opts.runs.get(runId);
      if (!run) return send(res, 404, 'text/html; charset=utf-8', notFoundPage(runId), { 'cache-control': 'no-store' });
      return send(res, 200, 'text/html; charset=utf-8', run.taskPageHtml(), {
        'cache-control': 'no-store',
        ...taskPagePolicy(run.provider.frameAncestors),
      });
    }
    if (pathname === '/') return send(res, 200, 'text/plain; charset=utf-8', 'hitloop gateway: task pages are at /task/<run id>\n');
    send(res, 404, 'text/plain; charset=utf-8', `nothing at ${pathname}\n`);
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      // The details (database text, stack) go to the log only, under an id the page quotes.
      const errorId = newErrorId();
      opts.log.error({ err, errorId, url: req.url }, 'HTTP request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `the gateway failed to serve this page; try again, and quote error ${errorId} if it persists\n`);
      else res.destroy();
    });
  };
}

function notFoundPage(runId: string): string {
  const safe = runId.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Task not found</title><link rel="stylesheet" href="/assets/hitloop.css"></head>
<body data-state="not_found"><main><h1>Task not found</h1><p>There is no task run <code>${safe}</code> here. Check the link you were given.</p></main></body></html>`;
}
