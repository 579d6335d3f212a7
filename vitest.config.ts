import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every response is checked against its documented schema while testing.
    env: { RM_VALIDATE_RESPONSES: '1' },
    // Native addon state is per process: forks keep each test file's engine its own.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
