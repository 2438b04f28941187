/** The `provider:` options of a run on Mechanical Turk (`provider: { type: mturk, sandbox: true }`). */
import { z } from 'zod';

const countryCode = z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166 country code in capitals, e.g. US');

export const mturkProviderOptionsSchema = z.strictObject({
  /** The requester sandbox (no money moves): start here. */
  sandbox: z.boolean().default(false),
  /** Comma-separated search keywords; default: the run's task_tags. */
  keywords: z.string().max(1000).optional(),
  /** How long MTurk waits before approving a submitted assignment on its own (MTurk's default is 30 days). */
  auto_approval_delay_seconds: z.number().int().min(0).max(2_592_000).default(259_200),
  /** Workers must be (In) or must not be (NotIn) in these places: MTurk's Worker_Locale requirement. */
  locale: z
    .strictObject({
      comparator: z.enum(['In', 'NotIn']).default('In'),
      places: z.array(z.strictObject({ country: countryCode, subdivision: z.string().regex(/^[A-Z0-9]{1,3}$/).optional() })).min(1).max(30),
    })
    .optional(),
  /**
   * hitloop qualification names that already exist at MTurk (e.g. Masters) -> their QualificationTypeId.
   * Qualifications not listed are created at MTurk under their hitloop name.
   */
  qualification_type_ids: z.record(z.string(), z.string().regex(/^[A-Z0-9]{1,64}$/, 'must be a QualificationTypeId')).default({}),
  /** Who qualification requirements keep out: MTurk's ActionsGuarded. */
  actions_guarded: z.enum(['Accept', 'PreviewAndAccept', 'DiscoverPreviewAndAccept']).default('Accept'),
});

export type MTurkProviderOptions = z.output<typeof mturkProviderOptionsSchema>;

/** MTurk's system qualification for a worker's locale. */
export const WORKER_LOCALE_QUALIFICATION_TYPE_ID = '00000000000000000071';
