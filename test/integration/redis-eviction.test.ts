import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { runCli } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';

// A Redis whose maxmemory-policy evicts keys (volatile-lru is the default of several managed services) deletes
// job keys first, since only they carry a TTL. That must be visible: a warning, a metric, and `status`.

const SECOND = 1000;

describe('Redis eviction made visible', () => {
  let redisServer: RedisServer;
  let fx: PipelineFixture;
  let consumer: Consumer;
  let admin: Redis;

  beforeAll(async () => {
    redisServer = await startRedis({ extraArgs: ['--maxmemory-policy', 'volatile-lru'] });
    admin = new Redis(redisServer.url);
    fx = await makePipelineFixture(inject('databaseUrl'), redisServer.url, 'eviction');
    consumer = await fx.startConsumer();
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the initial load' });
  });

  afterAll(async () => {
    admin?.disconnect();
    await fx?.close();
    await redisServer?.stop();
  });

  async function metric(name: string): Promise<number | undefined> {
    const line = (await consumer.metrics.metrics()).split('\n').find((l) => l.startsWith(name + ' '));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  }

  it('exports the policy and the evicted keys, and status exits 5 saying to set noeviction', async () => {
    expect(await metric('budget_cdc_redis_maxmemory_policy{policy="volatile-lru"}')).toBe(1);
    // Memory pressure: Redis evicts job keys.
    expect(await admin.call('CONFIG', 'SET', 'maxmemory', '3mb')).toBe('OK');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'ev-' || g, 60, 9.99 from generate_series(1, 20000) g`);
    await waitFor(async () => ((await metric('budget_cdc_redis_evicted_keys')) ?? 0) > 0, {
      timeoutMs: 30 * SECOND,
      message: 'the evicted keys to show in the metrics',
    });

    const { code, stdout } = await runCli(['status'], fx.cliEnv());
    expect(code).toBe(5);
    expect(stdout).toMatch(/maxmemory-policy volatile-lru, evicted keys [1-9]\d*/);
    expect(stdout).toMatch(/unhealthy \(exit 5\): .*set maxmemory-policy noeviction/);
  });

  it('is healthy again once the policy is noeviction', async () => {
    expect(await admin.call('CONFIG', 'SET', 'maxmemory', '0')).toBe('OK');
    expect(await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')).toBe('OK');
    await waitFor(async () => (await metric('budget_cdc_redis_maxmemory_policy{policy="noeviction"}')) === 1, {
      timeoutMs: 30 * SECOND,
      message: 'the policy metric to follow',
    });
    const { code, stdout } = await runCli(['status', '--json'], fx.cliEnv());
    const report = JSON.parse(stdout) as { redis: { eviction: { policy: string } }; health: { problems: string[] } };
    expect(report.redis.eviction.policy).toBe('noeviction');
    expect(report.health.problems.filter((p) => p.includes('maxmemory-policy'))).toEqual([]);
    expect(code).toBe(0);
  });
});
