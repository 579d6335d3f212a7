import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every response is checked against its documented schema while testing.
    env: { RM_VALIDATE_RESPONSES: '1' },
    // Native addon state is per process: forks keep each test file's engine its own.
    pool: 'forks',
    // The telephony simulators time each playback chunk as it arrives in the test process: V8's memory
    // reducer would stop it for 10-20 ms at a time (the server runs without it too: docs/configuration.md).
    execArgv: ['--no-memory-reducer'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
