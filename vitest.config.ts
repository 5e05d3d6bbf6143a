import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: two test files at a time (each may start its own kernel pool and NBD servers).
    maxWorkers: 2,
  },
});
