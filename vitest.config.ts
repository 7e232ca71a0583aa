import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Each file has its own database; files run in parallel, tests within a file in order.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
