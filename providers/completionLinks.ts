/**
 * Where a worker goes after submitting, for providers that take them back to their own site (a
 * Prolific completion URL). The provider puts it in the task link with an HMAC under the settings'
 * secret; the gateway serves the task page only when the signature holds, so the page may follow it
 * without becoming an open redirect.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const COMPLETION_URL_PARAM = 'hitloop_done';
export const COMPLETION_SIG_PARAM = 'hitloop_done_sig';

export function completionLinkSignature(secret: string, runId: string, url: string): string {
  return createHmac('sha256', secret).update(`hitloop-completion:v1:${runId}:${url}`).digest().subarray(0, 16).toString('base64url');
}

/** Null when the task link carries no completion URL or a correctly signed one; else what is wrong. */
export function completionLinkProblem(secret: string, runId: string, params: URLSearchParams): string | null {
  const url = params.get(COMPLETION_URL_PARAM);
  const sig = params.get(COMPLETION_SIG_PARAM);
  if (url === null && sig === null) return null;
  if (url === null || sig === null) return 'this link is incomplete (its return address is not signed)';
  if (!/^https?:\/\//.test(url)) return 'the return address in this link is not an http(s) URL';
  const expected = Buffer.from(completionLinkSignature(secret, runId, url), 'base64url');
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'the return address in this link was altered';
  return null;
}
