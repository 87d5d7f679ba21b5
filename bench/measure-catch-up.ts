import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { BenchChild } from './bench-child.js';
import type { BenchContext } from './bench-context.js';
import { toMiB } from './bench-results.js';
import { currentWalInsertLsn, readSlotProgress, withPgClient } from './bench-sql.js';
import { makeConsumerNames, startConsumer, waitForSlotAndCheckpoint } from './consumer-process.js';
import { withFreshDatabase } from './fresh-database.js';
import { jobId } from './jobs-csv.js';
import {
  countKeysPerMaster,
  expiryOf,
  flushAll,
  globLiteral,
  redisCommandCalls,
  redisCpuSeconds,
  singleRedis,
  type RedisUnderTest,
} from './redis-under-test.js';
import { formatInteger, rowsPerSecond } from './stats.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const POLL_INTERVAL_MS = 50;
// Generous: the deadline only stops a consumer that is stuck, it is not a target.
const SLOWEST_ROWS_PER_SECOND = 1000;

/** One run of the consumer catching up with a committed load. */
export interface CatchUpRun {
  rows: number;
  /** From the spawn of the consumer until the slot confirmed the end of the load: every key is in Redis. */
  seconds: number;
  /** From the spawn until the slot was active (the consumer streams): the start-up part of `seconds`. */
  startupSeconds: number | undefined;
  /** VmHWM of the consumer, read just before SIGTERM. */
  peakRssBytes: number;
  /** CPU seconds of the consumer over `seconds` (from its spawn), read with the peak RSS. */
  consumerCpuSeconds: number;
  /** CPU seconds of Redis over `seconds`, summed over the masters (INFO cpu, user + sys). */
  redisCpuSeconds: number;
  /** Commands Redis ran over `seconds`, summed over the masters (INFO commandstats): all, and EXECs (transactions). */
  redisCommands: { all: number; exec: number };
  /** The job keys each master held afterwards (one entry for a single Redis); they sum to `rows`. */
  keysPerMaster: number[];
}

/** Options of `measureCatchUp`. */
export interface CatchUpOptions {
  /** Names the database, slot and key prefix. */
  purpose: string;
  rows: number;
  /** Commits `rows` rows of `jobsCsv` into jobs, in one transaction, while the consumer is stopped. */
  fill(databaseUrl: string): Promise<void>;
  /** Added to the consumer's environment, for both of its starts; default none. */
  consumerEnv?: Record<string, string>;
  /** Where the consumer writes; default the bench's own Redis. */
  redis?: RedisUnderTest;
  /** A further check of what Redis holds once the consumer caught up and stopped, before Redis is flushed; default none. */
  check?(client: pg.Client, keyPrefix: string): Promise<void>;
}

/**
 * budget-cdc end to end on a committed load. In a fresh database the consumer creates its slot (with an empty
 * snapshot) and its checkpoint, and is stopped; the load is committed; the consumer is started again and timed
 * until the slot's confirmed_flush_lsn reaches the end of the load. The consumer acknowledges a position only
 * after Redis confirmed every write up to it, so that is when every key is in Redis. Checked afterwards: one
 * key per row under the prefix, summed over the masters, with an expiry.
 */
export async function measureCatchUp(context: BenchContext, options: CatchUpOptions): Promise<CatchUpRun> {
  const names = makeConsumerNames(options.purpose);
  const redis = options.redis ?? singleRedis(context);
  const consumerEnv = { ...redis.consumerEnv, ...options.consumerEnv };
  return withFreshDatabase(context.adminUrl, `bench_${options.purpose}`, { migrated: false }, (databaseUrl) =>
    withPgClient(databaseUrl, async (client) => {
      let consumer: BenchChild | undefined;
      try {
        consumer = await startConsumer(context, databaseUrl, names, consumerEnv);
        await waitForSlotAndCheckpoint(redis, client, consumer, names);
        await consumer.stop();

        await options.fill(databaseUrl);
        const endLsn = await currentWalInsertLsn(client);

        const redisCpuBefore = await redisCpuSeconds(redis);
        const redisCommandsBefore = await redisCommandCalls(redis);
        const running = await startConsumer(context, databaseUrl, names, consumerEnv);
        consumer = running;
        let activeAt: number | undefined;
        const caughtUpAt = await running.waitWhileRunning(
          async () => {
            const progress = await readSlotProgress(client, names.slot, endLsn);
            const now = performance.now();
            if (progress.active) activeAt ??= now;
            return progress.confirmedEnd ? now : undefined;
          },
          {
            timeoutMs: 10 * MINUTE + (options.rows / SLOWEST_ROWS_PER_SECOND) * SECOND,
            intervalMs: POLL_INTERVAL_MS,
            message: `the consumer to confirm ${endLsn}, the end of the load`,
          },
        );
        const redisCpu = (await redisCpuSeconds(redis)) - redisCpuBefore;
        const redisCommandsAfter = await redisCommandCalls(redis);
        const peakRssBytes = running.peakRssBytes();
        const consumerCpuSeconds = running.cpuSeconds();
        await running.stop();

        const keysPerMaster = await countKeysPerMaster(redis.masters, globLiteral(names.keyPrefix) + '*');
        const keys = keysPerMaster.reduce((sum, count) => sum + count, 0);
        if (keys !== options.rows) {
          throw new Error(
            `${keys} keys under ${names.keyPrefix} (${keysPerMaster.join(' + ')}) in ${redis.name} after a load of ${options.rows} rows`,
          );
        }
        const sampleKey = names.keyPrefix + jobId(0);
        const expiresAt = await expiryOf(redis, sampleKey);
        if (expiresAt <= Date.now()) throw new Error(`${sampleKey} has no expiry in the future (PEXPIRETIME ${expiresAt})`);
        await options.check?.(client, names.keyPrefix);

        return {
          rows: options.rows,
          seconds: (caughtUpAt - running.spawnedAt) / SECOND,
          startupSeconds: activeAt === undefined ? undefined : (activeAt - running.spawnedAt) / SECOND,
          peakRssBytes,
          consumerCpuSeconds,
          redisCpuSeconds: redisCpu,
          redisCommands: {
            all: redisCommandsAfter.all - redisCommandsBefore.all,
            exec: redisCommandsAfter.exec - redisCommandsBefore.exec,
          },
          keysPerMaster,
        };
      } finally {
        if (consumer !== undefined && consumer.exit === undefined) {
          consumer.process.kill('SIGKILL');
          await consumer.exited;
        }
        // Millions of keys per run: the next measurement starts with an empty Redis.
        await flushAll(redis);
      }
    }),
  );
}

/** One progress line's worth of a run: seconds, start-up, rate, peak RSS and CPU. */
export function describeCatchUp(run: CatchUpRun): string {
  const startup = run.startupSeconds === undefined ? '' : ` (slot active after ${run.startupSeconds.toFixed(2)} s)`;
  return (
    `${run.seconds.toFixed(2)} s${startup}, ${rowsPerSecond(run.rows, run.seconds)}, peak RSS ${toMiB(run.peakRssBytes)} MiB, ` +
    `CPU: consumer ${run.consumerCpuSeconds.toFixed(2)} s, Redis ${run.redisCpuSeconds.toFixed(2)} s; ` +
    `Redis commands ${formatInteger(run.redisCommands.all)}, EXEC ${formatInteger(run.redisCommands.exec)}`
  );
}
