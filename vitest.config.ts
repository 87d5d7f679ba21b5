import { defineConfig } from 'vitest/config';

const SECOND = 1000;

export default defineConfig({
  test: {
    globalSetup: ['./test/support/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60 * SECOND,
    hookTimeout: 120 * SECOND,
    // Processes, not threads: tests spawn the CLI and send it signals, which needs a real process per file.
    pool: 'forks',
    fileParallelism: true,
    // The machines (developers' and CI's) have 2 cores, and each test file also drives PostgreSQL and Redis.
    maxWorkers: 2,
  },
});
