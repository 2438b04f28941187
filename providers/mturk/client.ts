/**
 * The MTurk Requester client hitloop uses: the official @aws-sdk/client-mturk with credentials from
 * the AWS default chain only (environment, shared config/credentials files, profile, SSO, instance
 * role): never from a run config, and never logged or stored. MTurk lives in us-east-1; the
 * requester sandbox has its own endpoint. `HITLOOP_MTURK_ENDPOINT` replaces both (the local MTurk of
 * fakes/mturk stands in for them in tests and by hand).
 *
 * ThrottlingException and ServiceFault are retried by the SDK's standard retry strategy
 * (exponential backoff with jitter) up to MTURK_MAX_ATTEMPTS; activities retry beyond that.
 */
import { createHash } from 'node:crypto';
import { MTurkClient, RequestError } from '@aws-sdk/client-mturk';

export const MTURK_REGION = 'us-east-1';
export const MTURK_PRODUCTION_ENDPOINT = 'https://mturk-requester.us-east-1.amazonaws.com';
export const MTURK_SANDBOX_ENDPOINT = 'https://mturk-requester-sandbox.us-east-1.amazonaws.com';
export const MTURK_ENDPOINT_ENV = 'HITLOOP_MTURK_ENDPOINT';
export const MTURK_MAX_ATTEMPTS = 8;

/** The Requester API endpoint for production or the sandbox, unless the environment overrides it. */
export function mturkEndpoint(sandbox: boolean, env: NodeJS.ProcessEnv = process.env): string {
  const override = env[MTURK_ENDPOINT_ENV]?.trim();
  if (override) return override;
  return sandbox ? MTURK_SANDBOX_ENDPOINT : MTURK_PRODUCTION_ENDPOINT;
}

const clients = new Map<string, MTurkClient>();

/** One client per endpoint and process (it keeps connections and cached credentials). */
export function mturkClient(sandbox: boolean): MTurkClient {
  const endpoint = mturkEndpoint(sandbox);
  let client = clients.get(endpoint);
  if (!client) {
    client = new MTurkClient({ region: MTURK_REGION, endpoint, maxAttempts: MTURK_MAX_ATTEMPTS, retryMode: 'standard' });
    clients.set(endpoint, client);
  }
  return client;
}

/** Forget the clients (tests that change the endpoint or the credentials in the environment). */
export function resetMTurkClients(): void {
  for (const client of clients.values()) client.destroy();
  clients.clear();
}

/** MTurk's answer to a repeated UniqueRequestToken (inside its 24 hours). */
export function isDuplicateRequest(err: unknown): boolean {
  return err instanceof RequestError && (err.TurkErrorCode === 'AWS.MechanicalTurk.DuplicateRequest' || /already exists|already (been )?(paid|used)/i.test(err.message));
}

/** A RequestError: MTurk refused the request itself (retrying the same request cannot help). */
export function isRequestError(err: unknown): err is RequestError {
  return err instanceof RequestError;
}

/** Credential and signature refusals from AWS (before MTurk looks at the request). */
export function isCredentialError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return (
    name === 'UnrecognizedClientException' ||
    name === 'InvalidSignatureException' ||
    name === 'IncompleteSignatureException' ||
    name === 'MissingAuthenticationTokenException' ||
    name === 'CredentialsProviderError' ||
    name === 'ExpiredTokenException' ||
    name === 'AccessDeniedException'
  );
}

/**
 * A UniqueRequestToken for a hitloop request key: the key itself when it fits MTurk's 64
 * characters, else a hash of it (the same key always gives the same token).
 */
export function uniqueRequestToken(requestKey: string): string {
  if (requestKey.length <= 64) return requestKey;
  return `h:${createHash('sha256').update(requestKey).digest('hex').slice(0, 62)}`;
}
