/**
 * Where the `prolific` provider reaches Prolific and with what token: from the process settings
 * (environment, then the user config file; config/settings.ts), never from a run config, so the
 * token is never in history, logs or the database.
 */
import type { Settings } from '../../config/settings.ts';

export const DEFAULT_PROLIFIC_URL = 'https://api.prolific.com';
export const DEFAULT_PROLIFIC_APP_URL = 'https://app.prolific.com';

export interface ProlificSettings {
  /** API base, without `/api/v1` (the local fake's URL in tests). */
  url: string;
  /** Where participants are sent back to (`<appUrl>/submissions/complete?cc=...`). */
  appUrl: string;
  /** Undefined when not set: every API call then fails saying how to set it. */
  token: string | undefined;
  /** Checks webhook signatures; without it webhooks are refused. */
  webhookSecret: string | undefined;
}

export function prolificSettings(
  settings: Partial<Pick<Settings, 'prolificUrl' | 'prolificToken' | 'prolificWebhookSecret'>>,
): ProlificSettings {
  const url = (settings.prolificUrl ?? DEFAULT_PROLIFIC_URL).replace(/\/+$/, '');
  return {
    url,
    // The real API and the participants' site are two hosts; the local fake serves both from one.
    appUrl: url === DEFAULT_PROLIFIC_URL ? DEFAULT_PROLIFIC_APP_URL : url,
    token: settings.prolificToken,
    webhookSecret: settings.prolificWebhookSecret,
  };
}
