/**
 * Agent tokens: what a client shows to `resume` its agent after a reconnect, on any gateway.
 *
 * A token is `<body>.<signature>`: the body is base64url JSON naming the agent, its run, worker,
 * assignment and unit; the signature is HMAC-SHA256 of the body with the secret from settings.
 * Gateways need no shared state to check one, and a worker cannot make one for another agent.
 * A token does not expire by itself: an agent that has ended is refused by its status.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface AgentTokenClaims {
  agentId: string;
  runId: string;
  workerId: string;
  assignmentId: string;
  unitId: string;
}

const TOKEN_VERSION = 1;

export class TokenSigner {
  readonly #key: Buffer;

  constructor(secret: string) {
    if (!secret) throw new Error('the gateway needs a secret to sign agent tokens (HITLOOP_SECRET or `secret` in the user config)');
    this.#key = Buffer.from(secret, 'utf8');
  }

  sign(claims: AgentTokenClaims): string {
    const body = Buffer.from(
      JSON.stringify({ t: TOKEN_VERSION, a: claims.agentId, r: claims.runId, w: claims.workerId, s: claims.assignmentId, u: claims.unitId }),
    ).toString('base64url');
    return `${body}.${this.#mac(body).toString('base64url')}`;
  }

  /** The claims of a genuine token, or null for anything else (malformed, forged, altered). */
  verify(token: string): AgentTokenClaims | null {
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return null;
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = this.#mac(body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const c = parsed as Record<string, unknown>;
    if (c.t !== TOKEN_VERSION || ![c.a, c.r, c.w, c.s, c.u].every((x) => typeof x === 'string')) return null;
    return { agentId: c.a as string, runId: c.r as string, workerId: c.w as string, assignmentId: c.s as string, unitId: c.u as string };
  }

  #mac(body: string): Buffer {
    return createHmac('sha256', this.#key).update('hitloop-agent-token:').update(body).digest();
  }
}
