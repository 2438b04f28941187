/**
 * Which web pages may open the gateway's WebSocket (docs/protocol.md "Origins and framing").
 *
 * A browser sends the page's origin with every WebSocket handshake and lets any site's scripts
 * connect, cookies or not; so a page elsewhere could act for a worker who opened it. The gateway
 * accepts its own origin (the task page it serves), the origins configured, and clients that send
 * no Origin at all (not browsers: `hitloop simulate`, tests, other servers).
 */
import type { IncomingMessage } from 'node:http';

export interface OriginPolicy {
  allows(req: IncomingMessage): boolean;
}

/** Parses HITLOOP_GATEWAY_ALLOWED_ORIGINS: comma-separated origins, or `*` for any. */
export function allowedOriginsFromEnv(value = process.env.HITLOOP_GATEWAY_ALLOWED_ORIGINS): string[] {
  return (value ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
}

/** An origin as browsers send it (`scheme://host[:port]`, no path), lower-cased; null if it is none. */
function normalOrigin(origin: string): string | null {
  if (origin === '*') return '*';
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? null : url.origin.toLowerCase();
  } catch {
    return null;
  }
}

export function originPolicy(configured: readonly string[] = allowedOriginsFromEnv()): OriginPolicy {
  const allowed = new Set<string>();
  for (const origin of configured) {
    const normal = normalOrigin(origin);
    if (!normal) throw new Error(`"${origin}" is not an origin (scheme://host[:port]); fix HITLOOP_GATEWAY_ALLOWED_ORIGINS`);
    allowed.add(normal);
  }
  return {
    allows(req) {
      const origin = req.headers.origin;
      if (origin === undefined) return true;
      if (allowed.has('*')) return true;
      const normal = normalOrigin(origin);
      if (!normal) return false;
      if (allowed.has(normal)) return true;
      // The gateway's own pages: the origin names the host the request was sent to.
      const host = req.headers.host?.toLowerCase();
      return host !== undefined && (normal === `http://${host}` || normal === `https://${host}`);
    },
  };
}
