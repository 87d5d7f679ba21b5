import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { waitFor } from '../test/support/wait-for.js';
import type { BenchChild } from './bench-child.js';
import type { BenchContext } from './bench-context.js';
import { withPgClient } from './bench-sql.js';
import { makeConsumerNames, startConsumer, waitForSlotAndCheckpoint, type ConsumerNames } from './consumer-process.js';
import { withFreshDatabase } from './fresh-database.js';
import { singleRedis } from './redis-under-test.js';

const SECOND = 1000;
const ARRIVAL_TIMEOUT_MS = 30 * SECOND;
// K: keyspace events (channel __keyspace@<db>__:<key>); $: of string commands, SET among them.
const KEYSPACE_EVENTS = 'K$';
const KEYSPACE_CHANNEL_PREFIX = '__keyspace@0__:';

/** Options of `measureLatency`. */
export interface LatencyOptions {
  commits: number;
  /** Pause from one INSERT's start to the next. */
  intervalMs: number;
}

/**
 * Single-row INSERT commits against a running consumer, each timed from its query resolving (COMMIT returned)
 * to the keyspace event of its key (SET done: the key is readable), both with performance.now() in this
 * process. Returns the latencies in milliseconds, in commit order.
 */
export async function measureLatency(context: BenchContext, options: LatencyOptions): Promise<number[]> {
  const names = makeConsumerNames('latency');
  return withFreshDatabase(context.adminUrl, 'bench_latency', { migrated: false }, (databaseUrl) =>
    withPgClient(databaseUrl, async (client) => {
      const subscriber = new Redis(context.redisUrl);
      let consumer: BenchChild | undefined;
      try {
        consumer = await startConsumer(context, databaseUrl, names);
        await waitForSlotAndCheckpoint(singleRedis(context), client, consumer, names);
        await context.redis.config('SET', 'notify-keyspace-events', KEYSPACE_EVENTS);
        const events = await watchKeys(subscriber, names);

        // One commit first, untimed: the consumer streams (its stream started after the checkpoint) once it arrives.
        await insertJob(client, 'latency-ready');
        await consumer.waitWhileRunning(async () => events.arrivedAt.has(names.keyPrefix + 'latency-ready'), {
          timeoutMs: ARRIVAL_TIMEOUT_MS,
          message: 'the first row to reach Redis',
        });

        const committedAt = new Map<string, number>();
        const started = performance.now();
        for (let i = 0; i < options.commits; i++) {
          const jobId = `latency-${i}`;
          await insertJob(client, jobId);
          committedAt.set(names.keyPrefix + jobId, performance.now());
          await delay(Math.max(0, started + (i + 1) * options.intervalMs - performance.now()));
        }
        await waitFor(() => [...committedAt.keys()].every((key) => events.arrivedAt.has(key)), {
          timeoutMs: ARRIVAL_TIMEOUT_MS,
          message: `the keyspace events of all ${options.commits} rows`,
        });
        await consumer.stop();
        // An event can beat the query's resolution in this event loop; its latency counts as 0.
        return [...committedAt].map(([key, at]) => Math.max(0, events.arrivedAt.get(key)! - at));
      } finally {
        if (consumer !== undefined && consumer.exit === undefined) {
          consumer.process.kill('SIGKILL');
          await consumer.exited;
        }
        subscriber.disconnect();
        await context.redis.config('SET', 'notify-keyspace-events', '');
        await context.redis.flushall();
      }
    }),
  );
}

/** Subscribes to the keyspace events of the keys under the prefix; records when each key was first written. */
async function watchKeys(subscriber: Redis, names: ConsumerNames): Promise<{ arrivedAt: Map<string, number> }> {
  const arrivedAt = new Map<string, number>();
  subscriber.on('pmessage', (_pattern: string, channel: string) => {
    const at = performance.now();
    const key = channel.slice(KEYSPACE_CHANNEL_PREFIX.length);
    if (!arrivedAt.has(key)) arrivedAt.set(key, at);
  });
  const pattern = KEYSPACE_CHANNEL_PREFIX + names.keyPrefix.replace(/[*?[\]\\]/g, '\\$&') + '*';
  await subscriber.psubscribe(pattern);
  return { arrivedAt };
}

async function insertJob(client: pg.Client, jobId: string): Promise<void> {
  await client.query('insert into jobs (job_id, days_online, budget) values ($1, 7, 700.07)', [jobId]);
}
