import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import type { RebuildCause } from '../../src/sink/rebuild-record.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// A Redis that goes back in time: restarted from an older RDB snapshot, or a checkpoint rewritten behind the
// consumer's back. PostgreSQL was told the newer writes are safe, so only a rebuild from the table can bring
// them back: the consumer must notice, rebuild, and converge, with no manual step.

const SECOND = 1000;

describe('Redis going back in time', () => {
  let fx: PipelineFixture;
  let redisServer: RedisServer;
  let consumer: Consumer;
  const rebuilds: RebuildCause[] = [];

  async function expectRedisMatchesTable(): Promise<void> {
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  }

  beforeAll(async () => {
    // A Redis of this file's own: it is restarted from a snapshot.
    redisServer = await startRedis({ persistence: 'rdb' });
    fx = await makePipelineFixture(inject('databaseUrl'), redisServer.url, 'rollback');
    consumer = await fx.startConsumer();
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    // A new slot confirms its start before the initial load is in Redis: wait for the load's checkpoint.
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the initial load' });
  });

  afterAll(async () => {
    await fx?.close();
    await redisServer?.stop();
  });

  it('rebuilds after a restart from an older RDB snapshot: the updates and inserts after it come back', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'rdb-' || g, 1 + g % 30, g from generate_series(1, 1000) g`);
    await expectRedisMatchesTable();
    const admin = new Redis(redisServer.url);
    try {
      expect(await admin.call('SAVE')).toBe('OK');
    } finally {
      admin.disconnect();
    }
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id like 'rdb-%'`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'rdb-new-' || g, 5, 7.00 from generate_series(1, 1000) g`);
    await expectRedisMatchesTable();
    expect(rebuilds).toEqual(['new-slot']);

    // The snapshot holds the first 1,000 jobs with their old budgets and an older checkpoint.
    await redisServer.crash();
    await redisServer.start();
    // The fixture's own connection reconnects by itself; what it reads first is the snapshot (unless the
    // consumer already rebuilt, which is the point: then the assertions below hold anyway).

    await waitFor(() => rebuilds.includes('redis-went-back'), { timeoutMs: 30 * SECOND, message: 'a rebuild after Redis went back' });
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the rebuilt checkpoint' });
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('rdb-after', 2, 1.00)`);
    await expectRedisMatchesTable();
    expect((await fx.getJob('rdb-1'))!.budget).toBe('2.00');
    expect(await fx.getJob('rdb-new-1000')).not.toBeNull();
    expect(await fx.getJob('rdb-after')).not.toBeNull();
  });

  it('rebuilds when someone else writes the checkpoint, instead of skipping what it claims to cover', async () => {
    const rebuildsBefore = rebuilds.filter((cause) => cause === 'redis-went-back').length;
    // A checkpoint far in the future would make a consumer that trusted it skip every change from now on.
    await fx.redis.set(checkpointKey(fx.config.keyPrefix), 'FFFFFFFF/0#0 ack=FFFFFFFF/0 writer=intruder');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-intruder', 3, 3.00)`);
    await waitFor(() => rebuilds.filter((cause) => cause === 'redis-went-back').length > rebuildsBefore, {
      message: 'a rebuild after the foreign checkpoint',
    });
    await expectRedisMatchesTable();
    expect(await fx.getJob('after-intruder')).toMatchObject({ daily: ['1.00', '1.00', '1.00'] });
    expect(await fx.redis.get(checkpointKey(fx.config.keyPrefix))).not.toContain('intruder');
  });
});
