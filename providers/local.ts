// Scaffold by the lead so the rest type-checks; helper-4 (gateway) replaces this whole file.
import { mockProvider } from './mock.ts';
import type { CrowdProvider } from './types.ts';

export const localProvider: CrowdProvider = { ...mockProvider, type: 'local' };
