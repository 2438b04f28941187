/**
 * The operator console (`/admin`, static files from console/) and the JSON API (`/api/v1/...`,
 * api/routes.ts) on the gateway's HTTP server, routed by find-my-way (the router of fastify, which
 * works on plain node:http requests and so sits beside the gateway's WebSocket upgrade).
 *
 *   const consoleHttp = await startConsoleHttp({ settings, client, db, log });
 *   if (consoleHttp.handles(req)) consoleHttp.serve(req, res);
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import FindMyWay from 'find-my-way';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Settings } from '../config/settings.ts';
import type { Database } from '../model/database.ts';
import { connectOperator } from '../operator/api.ts';
import { createQualificationService } from '../qualifications/service.ts';
import { createReviewer } from '../review/operator.ts';
import { OperatorAuth } from './auth.ts';
import { newErrorId } from '../gateway/protocol.ts';
import { DEFAULT_LOGIN_LIMITS, LoginLimiter } from './loginLimits.ts';
import { ApiError, internalError, invalidInput, knownApiError, unstorableInput } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { type ApiDeps, type Route, type RouteContext, apiRoutes } from './routes.ts';

const CONSOLE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'console');
const MAX_BODY_BYTES = 256 * 1024;
/** A body over MAX_BODY_BYTES is still read (and dropped) up to this, for a clean 413. */
const MAX_DRAINED_BYTES = 64 * 1024 * 1024;
const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'] as const;
const CONSOLE_FILES: Readonly<Record<string, string>> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** Every answer of the console and the API: never framed (clickjacking), never cached, no sniffing. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; media-src 'self' data: http: https:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface ConsoleHttp {
  /** Whether the request is the console's or the API's. */
  handles(req: IncomingMessage): boolean;
  serve(req: IncomingMessage, res: ServerResponse): void;
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...CONSOLE_HEADERS, ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const sendError = (res: ServerResponse, err: ApiError): void => sendJson(res, err.status, { code: err.code, message: err.message }, err.headers);

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Past the limit the rest is read and dropped, so the client, still sending, gets the answer
    // (a socket closed under it shows only a reset); past the drain limit it is cut off.
    if (size > MAX_DRAINED_BYTES) break;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw new ApiError(413, 'too_large', `the request body is over ${MAX_BODY_BYTES / 1024} KiB; send less at once`);
  if (size === 0) return {};
  if (!/^application\/json\b/i.test(type)) throw new ApiError(415, 'unsupported_media_type', 'send the request body as JSON (content-type: application/json)');
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'invalid_json', 'the request body is not valid JSON; nothing was changed');
  }
}

/** A state-changing request from a page of another origin is refused, whatever it carries. */
function crossOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

export function createConsoleHttp(deps: ApiDeps): ConsoleHttp {
  const routes = apiRoutes(deps);
  const openApi = JSON.stringify(openApiDocument(routes));
  const files = new Map<string, { body: Buffer; type: string }>();
  const consoleFile = (name: string, type: string): { body: Buffer; type: string } => {
    let file = files.get(name);
    if (!file) {
      file = { body: readFileSync(path.join(CONSOLE_DIR, name)), type };
      files.set(name, file);
    }
    return file;
  };

  const router = FindMyWay({
    ignoreTrailingSlash: true,
    defaultRoute(req, res) {
      const pathname = (req.url ?? '').split('?', 1)[0]!;
      // A path the API has, asked with a method it does not take: 405 and the methods it takes.
      const allowed = pathname.startsWith('/api/') ? ROUTE_METHODS.filter((method) => router.find(method, pathname) !== null) : [];
      if (allowed.length > 0) {
        sendError(res, new ApiError(405, 'method_not_allowed', `${pathname} takes ${allowed.join(', ')}, not ${req.method}`, { allow: allowed.join(', ') }));
      } else if (pathname.startsWith('/api/')) sendError(res, new ApiError(404, 'not_found', `there is no API at ${req.method} ${pathname}; /api/v1/openapi.json lists them`));
      else {
        res.writeHead(404, { ...CONSOLE_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
        res.end('There is no console page here; the console is at /admin\n');
      }
    },
  });

  /** The request's credential, or the refusal; a Bearer header is a password attempt, limited as a login. */
  async function authenticate(req: IncomingMessage, changes: boolean): Promise<RouteContext['credential']> {
    const attempt = req.headers.authorization !== undefined && deps.auth.enabled;
    const address = deps.loginLimiter.addressOf(req);
    if (attempt) await deps.loginLimiter.admit(address);
    const verdict = deps.auth.check(req, changes);
    if (!verdict.ok) {
      if (attempt && verdict.code === 'unauthorized') await deps.loginLimiter.failed(address);
      throw new ApiError(verdict.status, verdict.code, verdict.message);
    }
    return verdict.credential;
  }

  /** The answer to a failed request: its own error, or one sentence with an id whose log line holds the detail. */
  function answerFor(err: unknown, req: IncomingMessage): ApiError {
    const known = knownApiError(err);
    if (known) return known;
    const errorId = newErrorId();
    deps.log.error({ err, errorId, method: req.method, url: req.url }, 'API request failed');
    return internalError(errorId);
  }

  function mount(route: Route): void {
    const findMyWayPath = route.path.replace(/\{(\w+)\}/g, ':$1');
    router.on(route.method, findMyWayPath, (req, res, params, _store, searchParams) => {
      // find-my-way ignores a handler's result; handle answers every failure itself and never rejects.
      void handle(route, req, res, params, searchParams);
    });
  }

  async function handle(
    route: Route,
    req: IncomingMessage,
    res: ServerResponse,
    rawParams: Record<string, string | undefined>,
    searchParams: Record<string, string>,
  ): Promise<void> {
    try {
      const changes = route.method !== 'GET';
      if (changes && crossOrigin(req)) throw new ApiError(403, 'cross_origin', 'actions are only taken from the console\'s own pages; nothing was changed');
      let credential: RouteContext['credential'] = null;
      if (route.auth) credential = await authenticate(req, changes);
      const params = Object.fromEntries(Object.entries(rawParams).map(([k, v]) => [k, v ?? '']));
      const unstorable = unstorableInput('path', params) ?? unstorableInput('query', { ...searchParams });
      if (unstorable) throw unstorable;
      if (route.params) {
        const parsed = route.params.safeParse(params);
        if (!parsed.success) throw new ApiError(400, 'invalid_request', `the path is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      let query: unknown = {};
      if (route.query) {
        const parsed = (route.query as z.ZodType).safeParse({ ...searchParams });
        if (!parsed.success) throw invalidInput('query', parsed.error);
        query = parsed.data;
      }
      let body: unknown = undefined;
      if (route.body) {
        const raw = await readJsonBody(req);
        const unstorableBody = unstorableInput('body', raw);
        if (unstorableBody) throw unstorableBody;
        const parsed = route.body.safeParse(raw);
        if (!parsed.success) throw invalidInput('body', parsed.error);
        body = parsed.data;
      }
      const result = await route.handler({ req, res, params, query, body, credential });
      if (route.response) sendJson(res, route.status ?? 200, result);
    } catch (err) {
      if (res.headersSent) res.destroy();
      else sendError(res, answerFor(err, req));
    }
  }

  for (const route of routes) mount(route);
  router.on('GET', '/api/v1/openapi.json', (req, res) => {
    authenticate(req, false).then(
      () => {
        res.writeHead(200, { ...CONSOLE_HEADERS, 'content-type': 'application/json; charset=utf-8' });
        res.end(openApi);
      },
      (err: unknown) => sendError(res, answerFor(err, req)),
    );
  });
  const page = (_req: IncomingMessage, res: ServerResponse): void => {
    const file = consoleFile('index.html', 'text/html; charset=utf-8');
    res.writeHead(200, { ...CONSOLE_HEADERS, 'content-type': file.type });
    res.end(file.body);
  };
  router.on('GET', '/admin', page);
  router.on('GET', '/admin/assets/:file', (req, res, params) => {
    const name = params.file ?? '';
    const type = CONSOLE_FILES[name];
    if (!type) {
      res.writeHead(404, { ...CONSOLE_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
      res.end('no such console file\n');
      return;
    }
    const file = consoleFile(name, type);
    res.writeHead(200, { ...CONSOLE_HEADERS, 'content-type': file.type, 'cache-control': 'no-cache' });
    res.end(file.body);
  });

  return {
    handles(req) {
      const pathname = (req.url ?? '/').split('?', 1)[0]!;
      return pathname === '/admin' || pathname.startsWith('/admin/') || pathname.startsWith('/api/');
    },
    serve(req, res) {
      router.lookup(req, res);
    },
  };
}

/** The console and API of a gateway, on its database and Temporal client. */
export async function startConsoleHttp(opts: { settings: Settings; client: Client; db: Database; log: Logger }): Promise<ConsoleHttp> {
  const operator = await connectOperator(opts.settings, { client: opts.client, db: opts.db });
  return createConsoleHttp({
    operator,
    reviewer: createReviewer({ client: opts.client, db: opts.db, settings: opts.settings }),
    qualifications: createQualificationService({ db: opts.db, settings: opts.settings, log: opts.log }),
    auth: new OperatorAuth({
      secret: opts.settings.secret,
      password: opts.settings.operatorPassword,
      secure: opts.settings.gatewayUrl.startsWith('https:'),
    }),
    loginLimiter: new LoginLimiter(DEFAULT_LOGIN_LIMITS, opts.settings.trustedProxies),
    log: opts.log,
  });
}
