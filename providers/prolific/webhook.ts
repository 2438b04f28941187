/**
 * `POST /providers/prolific/webhook` on the gateway: Prolific's `submission.status.change` events.
 * Verified with the X-Prolific-Request-Signature scheme (base64 HMAC-SHA256 of timestamp + body
 * under the workspace's webhook secret), refused when older than five minutes (a replay), and
 * handled once per (submission, status). A participant who RETURNED the study or TIMED-OUT gives
 * their unit back at once (agent `returned` / `timeout`), not at the assignment timeout; the run's
 * poll of the study's submissions does the same when no webhook arrives (docs/design.md §5).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Settings } from '../../config/settings.ts';
import type { Database } from '../../model/database.ts';
import { ProviderCall } from '../../model/entities.ts';
import { type AgentReturned, agentReturnedSignal } from '../../workflows/definitions.ts';
import { agentsLeaving } from '../leavers.ts';
import { PROLIFIC_PROVIDER, leavingStatusOf, runOfStudy } from './provider.ts';
import { prolificSettings } from './settings.ts';

/** How old a delivery may be: older ones are refused as replays. */
export const WEBHOOK_MAX_AGE_SECONDS = 300;

export interface WebhookRequest {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}
export interface WebhookAnswer {
  status: number;
  body: Record<string, unknown>;
}
export type WebhookHandler = (req: WebhookRequest) => Promise<WebhookAnswer>;

interface Signaller {
  signalAssignment(assignmentId: string, signal: typeof agentReturnedSignal, args: AgentReturned): Promise<void>;
}

const eventSchema = z.looseObject({
  event_type: z.string(),
  resource_id: z.string().min(1).max(100),
  status: z.string().min(1).max(50),
  participant_id: z.string().min(1).max(200).optional(),
  study_id: z.string().min(1).max(100).optional(),
});

export function prolificWebhookSignature(secret: string, timestamp: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(timestamp).update(body).digest('base64');
}

const header = (h: WebhookRequest['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export function createProlificWebhook(deps: {
  db: Database;
  calls: Signaller;
  log: Logger;
  settings: Partial<Pick<Settings, 'prolificUrl' | 'prolificToken' | 'prolificWebhookSecret'>>;
  now?: () => number;
}): WebhookHandler {
  const now = deps.now ?? Date.now;
  return async ({ headers, body }) => {
    const secret = prolificSettings(deps.settings).webhookSecret;
    if (!secret) return { status: 503, body: { error: 'this gateway has no Prolific webhook secret (HITLOOP_PROLIFIC_WEBHOOK_SECRET)' } };
    const signature = header(headers, 'x-prolific-request-signature');
    const timestamp = header(headers, 'x-prolific-request-timestamp');
    if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) {
      return { status: 401, body: { error: 'missing X-Prolific-Request-Signature or X-Prolific-Request-Timestamp' } };
    }
    const expected = Buffer.from(prolificWebhookSignature(secret, timestamp, body), 'base64');
    const given = Buffer.from(signature, 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { status: 401, body: { error: 'the signature does not match this body and timestamp' } };
    }
    if (Math.abs(now() / 1000 - Number(timestamp)) > WEBHOOK_MAX_AGE_SECONDS) {
      return { status: 401, body: { error: `the timestamp is more than ${WEBHOOK_MAX_AGE_SECONDS} s away: refused as a replay` } };
    }
    let event: z.infer<typeof eventSchema>;
    try {
      const parsed = eventSchema.safeParse(JSON.parse(body.toString('utf8')));
      if (!parsed.success) return { status: 400, body: { error: `not a submission event: ${parsed.error.issues[0]?.message}` } };
      event = parsed.data;
    } catch {
      return { status: 400, body: { error: 'the body is not JSON' } };
    }
    if (event.event_type !== 'submission.status.change') return { status: 200, body: { ignored: event.event_type } };

    const em = deps.db.em();
    const key = `webhook:${event.resource_id}:${event.status}`;
    if (await em.findOne(ProviderCall, { provider: PROLIFIC_PROVIDER, operation: 'webhook', requestKey: key })) {
      return { status: 200, body: { duplicate: true } };
    }
    let freed = 0;
    const leaving = leavingStatusOf(event.status);
    const runId = leaving && event.study_id && event.participant_id ? await runOfStudy(em, event.study_id) : null;
    if (leaving && runId) {
      const agents = await agentsLeaving(em, PROLIFIC_PROVIDER, runId, [{ providerWorkerId: event.participant_id!, status: leaving }]);
      for (const agent of agents) {
        await deps.calls.signalAssignment(agent.assignmentId, agentReturnedSignal, { agentId: agent.agentId, status: agent.status });
        freed += 1;
      }
    }
    // Recorded after the signals: a crash before this line gets the event again from Prolific's retry,
    // and a second `returned` signal for an agent that already returned changes nothing.
    await em.insert(ProviderCall, {
      provider: PROLIFIC_PROVIDER,
      operation: 'webhook',
      requestKey: key,
      target: event.resource_id,
      payload: { status: event.status, participant: event.participant_id ?? null, study: event.study_id ?? null, freed },
      createdAt: new Date(),
    });
    deps.log.info({ submission: event.resource_id, status: event.status, freed }, 'Prolific webhook');
    return { status: 200, body: { freed } };
  };
}
