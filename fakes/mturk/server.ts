/**
 * The local MTurk's HTTP side, on one port:
 *
 *   POST /                       the Requester API (AWS JSON 1.1, `X-Amz-Target: MTurkRequesterServiceV20170117.<Operation>`,
 *                                a SigV4 `Authorization` header of the right shape; errors as MTurk's error JSON)
 *   GET  /mturk/hits?workerId=W  the worker's list of assignable HITs, each with a preview link
 *   GET  /mturk/preview?hitId=H&workerId=W   the HIT's ExternalURL in an iframe with
 *                                `assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`, and an Accept button
 *   POST /mturk/accept           (form hitId, workerId) accept: redirects to the work page
 *   GET  /mturk/work?assignmentId=A   the iframe with `assignmentId`, `hitId`, `workerId`, `turkSubmitTo`
 *   POST /mturk/externalSubmit   the task page's form: the assignment becomes Submitted
 *   GET  /_fake/state            hits, assignments, ledger and balance as JSON (for people and tests)
 *
 * Start it by hand with `hitloop fake mturk --port N`; point hitloop at it with
 * `HITLOOP_MTURK_ENDPOINT=http://127.0.0.1:N`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeMTurk, MTurkFault, type FakeMTurkOptions } from './state.ts';

export const MTURK_TARGET_PREFIX = 'MTurkRequesterServiceV20170117.';
export const MTURK_SIGNING_SERVICE = 'mturk-requester';

const SIGV4_AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]{16,128})\/(\d{8})\/([a-z0-9-]+)\/mturk-requester\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=[0-9a-f]{64}$/;

export interface FakeMTurkServerOptions extends FakeMTurkOptions {
  port?: number;
  host?: string;
  /** Access key ids the server knows; others are refused like AWS does (UnrecognizedClientException). Default: any. */
  accessKeyIds?: string[];
}

export interface FakeMTurkServer {
  readonly mturk: FakeMTurk;
  /** `http://host:port` */
  readonly url: string;
  /** Requests refused for their signature, by reason (tests read it). */
  readonly authFailures: string[];
  close(): Promise<void>;
}

/** Why an Authorization header does not look like SigV4 for MTurk, or null when it does. */
export function sigV4Problem(headers: IncomingMessage['headers'], accessKeyIds?: readonly string[]): { type: string; message: string } | null {
  const authorization = headers.authorization;
  if (!authorization) return { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  const match = SIGV4_AUTHORIZATION.exec(authorization);
  if (!match) return { type: 'IncompleteSignatureException', message: `Authorization header requires a SigV4 Credential, SignedHeaders and Signature for service ${MTURK_SIGNING_SERVICE}` };
  const [, keyId, day, , signed] = match;
  const date = headers['x-amz-date'];
  if (typeof date !== 'string' || !/^\d{8}T\d{6}Z$/.test(date) || !date.startsWith(day!)) {
    return { type: 'IncompleteSignatureException', message: 'X-Amz-Date is missing or does not match the credential scope date' };
  }
  const signedHeaders = signed!.split(';');
  for (const required of ['host', 'x-amz-date', 'x-amz-target']) {
    if (!signedHeaders.includes(required)) return { type: 'IncompleteSignatureException', message: `SignedHeaders must include ${required}` };
  }
  if (accessKeyIds && !accessKeyIds.includes(keyId!)) {
    return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  }
  return null;
}

export async function startFakeMTurk(options: FakeMTurkServerOptions = {}): Promise<FakeMTurkServer> {
  const mturk = new FakeMTurk(options);
  const authFailures: string[] = [];
  let base = '';

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { __type: 'ServiceFault', Message: `the local MTurk failed: ${(err as Error).message}` });
      else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base);
    const body = await readBody(req);
    if (req.method === 'POST' && url.pathname === '/') return requesterApi(req, res, body);
    if (req.method === 'GET' && url.pathname === '/_fake/state') {
      return sendJson(res, 200, {
        balance: mturk.balance,
        hits: [...mturk.hits.values()],
        assignments: [...mturk.assignments.values()],
        ledger: mturk.ledger,
        blocks: Object.fromEntries(mturk.blocks),
        notifications: mturk.notifications,
      });
    }
    try {
      if (req.method === 'GET' && url.pathname === '/mturk/hits') return hitList(res, url.searchParams.get('workerId') ?? '');
      if (req.method === 'GET' && url.pathname === '/mturk/preview') {
        const hitId = url.searchParams.get('hitId') ?? '';
        return framePage(res, 'Preview', previewSrc(hitId), acceptForm(hitId, url.searchParams.get('workerId') ?? ''));
      }
      if (req.method === 'POST' && url.pathname === '/mturk/accept') {
        const form = new URLSearchParams(body);
        const workerId = form.get('workerId') ?? '';
        if (!/^[A-Z0-9]{5,64}$/.test(workerId)) return sendHtml(res, 400, page('Not signed in', '<p>Give a workerId (capital letters and digits) to accept a HIT.</p>'));
        const assignment = mturk.accept(form.get('hitId') ?? '', workerId);
        res.writeHead(303, { location: `/mturk/work?assignmentId=${encodeURIComponent(assignment.AssignmentId)}` });
        res.end();
        return;
      }
      if (req.method === 'GET' && url.pathname === '/mturk/work') {
        const assignment = mturk.assignments.get(url.searchParams.get('assignmentId') ?? '');
        if (!assignment) return sendHtml(res, 404, page('No such assignment', '<p>This assignment does not exist.</p>'));
        const src = withParams(mturk.externalUrl(assignment.HITId), {
          assignmentId: assignment.AssignmentId,
          hitId: assignment.HITId,
          workerId: assignment.WorkerId,
          turkSubmitTo: base,
        });
        return framePage(res, `Assignment ${assignment.AssignmentId} (${assignment.AssignmentStatus})`, src, '');
      }
      if (req.method === 'POST' && url.pathname === '/mturk/externalSubmit') {
        const fields = Object.fromEntries(new URLSearchParams(body));
        const assignment = mturk.externalSubmit(fields);
        return sendHtml(res, 200, page('HIT submitted', `<p data-submitted="${esc(assignment.AssignmentId)}">Assignment ${esc(assignment.AssignmentId)} was submitted. Thank you.</p>`));
      }
    } catch (err) {
      if (err instanceof MTurkFault) return sendHtml(res, 400, page('Refused', `<p data-error="${esc(err.turkErrorCode ?? err.type)}">${esc(err.message)}</p>`));
      throw err;
    }
    sendHtml(res, 404, page('Not found', `<p>Nothing at ${esc(url.pathname)}.</p>`));
  }

  function requesterApi(req: IncomingMessage, res: ServerResponse, body: string): void {
    const problem = sigV4Problem(req.headers, options.accessKeyIds);
    if (problem) {
      authFailures.push(problem.type);
      return sendJson(res, problem.type === 'MissingAuthenticationTokenException' || problem.type === 'IncompleteSignatureException' ? 403 : 400, {
        __type: problem.type,
        message: problem.message,
      });
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
      return sendJson(res, 400, { __type: 'SerializationException', message: 'Content-Type must be application/x-amz-json-1.1' });
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    if (!target.startsWith(MTURK_TARGET_PREFIX)) return sendJson(res, 400, { __type: 'UnknownOperationException', message: `unknown X-Amz-Target ${JSON.stringify(target)}` });
    let input: Record<string, unknown>;
    try {
      const parsed: unknown = body === '' ? {} : JSON.parse(body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      input = parsed as Record<string, unknown>;
    } catch {
      return sendJson(res, 400, { __type: 'SerializationException', message: 'the request body is not a JSON object' });
    }
    try {
      sendJson(res, 200, mturk.call(target.slice(MTURK_TARGET_PREFIX.length), input));
    } catch (err) {
      if (!(err instanceof MTurkFault)) throw err;
      if (err.type === 'ThrottlingException') return sendJson(res, 400, { __type: 'ThrottlingException', message: err.message });
      sendJson(res, err.type === 'ServiceFault' ? 500 : 400, { __type: err.type, Message: err.message, TurkErrorCode: err.turkErrorCode });
    }
  }

  function previewSrc(hitId: string): string {
    return withParams(mturk.externalUrl(hitId), { assignmentId: 'ASSIGNMENT_ID_NOT_AVAILABLE', hitId });
  }

  function hitList(res: ServerResponse, workerId: string): void {
    const rows = [...mturk.hits.values()]
      .filter((h) => h.HITStatus === 'Assignable')
      .map((h) => `<li><a href="/mturk/preview?hitId=${encodeURIComponent(h.HITId)}&amp;workerId=${encodeURIComponent(workerId)}">${esc(h.HITId)}</a></li>`)
      .join('');
    sendHtml(res, 200, page('HITs', `<ul>${rows}</ul>`));
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  base = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    mturk,
    url: base,
    authFailures,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function acceptForm(hitId: string, workerId: string): string {
  return `<form method="post" action="/mturk/accept"><input type="hidden" name="hitId" value="${esc(hitId)}">
<label>Worker id <input name="workerId" value="${esc(workerId)}"></label> <button id="accept" type="submit">Accept</button></form>`;
}

function framePage(res: ServerResponse, title: string, src: string, above: string): void {
  sendHtml(res, 200, page(title, `${above}<iframe id="task" title="task" src="${esc(src)}" style="width:100%;height:80vh;border:1px solid #999"></iframe>`));
}

function withParams(url: string, params: Record<string, string>): string {
  const target = new URL(url);
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
  return target.toString();
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} - local MTurk</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': crypto.randomUUID(),
  });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1_000_000) req.destroy(new Error('request body over 1 MB'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
