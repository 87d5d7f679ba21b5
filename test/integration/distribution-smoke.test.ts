import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { loadConfig } from '../../src/config.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { startService, stopAllServices, type Service } from '../support/distribution-service.js';

describe('distribution service: the even rule over HTTP', () => {
  let fx: PipelineFixture;
  let service: Service;
  let consumer: Consumer;

  beforeAll(async () => {
    service = await startService('even');
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'distsmoke');
    const { distribution } = loadConfig({ databaseUrl: fx.config.databaseUrl, distribution: `${service.url}/distribute` }, {});
    consumer = await fx.startConsumer({ distribution });
    await fx.waitForConfirmed();
  });

  afterAll(async () => {
    await fx?.close();
    await stopAllServices();
  });

  it('writes what the built-in split writes, for inserts, COPY-sized batches, updates and deletes', async () => {
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'j-' || i, 1 + i % 40, (i * 7.31)::numeric(14,2) from generate_series(1, 3000) i`,
    );
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id like 'j-1%'`);
    await fx.sql.query(`update jobs set job_id = 'renamed-' || job_id where job_id like 'j-2%'`);
    await fx.sql.query(`delete from jobs where job_id like 'j-3%'`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(consumer).toBeDefined();
  });
});
