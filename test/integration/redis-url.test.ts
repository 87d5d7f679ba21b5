import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Consumer } from '../../src/consumer/consumer.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// REDIS_URL forms that ioredis reads: the batch writer must read them the same way (it takes ioredis's parsed
// options), or writes and checkpoint land in different databases and the consumer resyncs in a loop.

describe('REDIS_URL read the same way by both Redis connections', () => {
  let fx: PipelineFixture;
  let consumer: Consumer;
  const rebuilds: string[] = [];
  let databaseZero: Redis;

  beforeAll(async () => {
    // The database in the query string (ioredis's form), not in the path.
    fx = await makePipelineFixture(inject('databaseUrl'), `${inject('redisUrl')}?db=3`, 'redis_url_db');
    databaseZero = new Redis(inject('redisUrl'));
    consumer = await fx.startConsumer();
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the initial load' });
  });

  afterAll(async () => {
    databaseZero?.disconnect();
    await fx?.close();
  });

  it('writes jobs and checkpoint to the database of ?db=3, with no resync after the first load', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'db3-' || g, 2, 5.00 from generate_series(1, 3000) g`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.redis.call('CLIENT', 'INFO')).toMatch(/ db=3 /);
    expect(await databaseZero.exists(fx.config.keyPrefix + 'db3-1', checkpointKey(fx.config.keyPrefix))).toBe(0);
    expect(rebuilds).toEqual(['new-slot']);
  });
});
