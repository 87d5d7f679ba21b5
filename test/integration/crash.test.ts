import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCrashScenario } from '../support/crash-scenario.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

// kill -9 at random moments of a large COPY with single-row changes streaming; after the last restart Redis
// must equal the table. `npm run torture` runs the long version (more rows, more kills) and prints figures.

describe('crash anywhere', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;

  beforeAll(async () => {
    // Servers of its own: the load and the kills must not slow the other test files' servers.
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  });

  afterAll(async () => {
    await Promise.all([postgres?.stop(), redis?.stop()]);
  });

  it('converges to exactly the state the table implies after repeated kill -9 during a 200k-row COPY', { timeout: 300_000 }, async () => {
    const result = await runCrashScenario({
      adminUrl: postgres.url,
      redisUrl: redis.url,
      rows: 200_000,
      kills: 3,
      maxKillIntervalMs: 3_000,
    });
    expect(result.kills).toBe(3);
    expect(result).toMatchObject({ missing: 0, wrong: 0, laterExpiry: 0, earlierExpiry: 0, extra: 0 });
  });
});
