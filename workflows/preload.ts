/**
 * Loaded once per worker thread, when its reusable V8 context starts (the bundler's
 * `preloadModules`, workers/workflowBundle.ts), and shared by every workflow instance that context
 * runs. Any other module of the bundle is evaluated again for each new workflow instance (and for each
 * replay after a cache eviction): zod alone cost a new AssignmentWorkflow about 5 ms of worker CPU
 * (bench/workflowInstanceCost.ts).
 *
 * Only modules without per-workflow state belong here, and the SDK deep-freezes what they export once
 * this has run, so a shared module must not change its exported objects afterwards. zod fills some
 * global state lazily: its default locale and memoizer on the first schema built, whether it may
 * compile parsers on the first object schema. Building and using one schema here fills them before
 * the freeze. The payload schemas themselves stay per instance (workflows/definitions.ts): a frozen
 * schema could not cache its parsers.
 *
 * Not @opentelemetry/api, nor what imports it (the tracing interceptors, workflows/tracing.ts): each
 * instance registers its own tracer provider in the API's singletons.
 */
// OpenTelemetry's attribute names: constants only, loaded here so that the tracing interceptors'
// modules that name them (resources, spans) find them shared. The names imported select the modules.
import { SEMATTRS_EXCEPTION_MESSAGE, SEMRESATTRS_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { z } from 'zod';

const primer = z.object({ text: z.string().min(1), count: z.number().int().optional(), kind: z.enum(['a']) });
primer.safeParse({ text: 'x', count: 1, kind: 'a' });
primer.safeParse({ text: '', count: 0.5, kind: 'b' });

/** Exported so that the bundler keeps the two attribute-name modules (the package has no side effects). */
export const SHARED_ATTRIBUTE_NAMES = [SEMATTRS_EXCEPTION_MESSAGE, SEMRESATTRS_SERVICE_NAME] as const;
