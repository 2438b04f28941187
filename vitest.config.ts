import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Each file starts its own Temporal dev server and databases; two cores run two files at once.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
