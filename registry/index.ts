/**
 * The process-wide registries. Implementations register themselves when their module is imported
 * (`providers.register(mockProvider)`); whoever builds a worker or the CLI imports them first.
 */
import type { Blueprint } from '../blueprints/types.ts';
import type { CrowdProvider } from '../providers/types.ts';
import { Registry } from './registry.ts';

export { DuplicateTypeError, Registry, UnknownTypeError } from './registry.ts';

export const providers = new Registry<CrowdProvider>('provider');
export const blueprints = new Registry<Blueprint>('blueprint');
