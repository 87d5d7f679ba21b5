import { closeSync, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import { BenchChild } from './bench-child.js';
import type { BenchContext } from './bench-context.js';
import {
  countJobs,
  currentWalFlushLsn,
  walNotSentBytes,
  walSentUpTo,
  walsenderActivity,
  withPgClient,
  type WalsenderActivity,
} from './bench-sql.js';
import { makeConsumerNames, startConsumer, waitForSlotAndCheckpoint } from './consumer-process.js';
import { writeFloorResp } from './floor-resp.js';
import { withFreshDatabase } from './fresh-database.js';
import { jobId } from './jobs-csv.js';
import { startPsqlCopy } from './postgres-programs.js';
import { countKeysPerMaster, globLiteral, redisCpuSeconds, singleRedis } from './redis-under-test.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** Pause between two reads of the last key: with a read's round trip, the resolution of the freshness figure. */
export const LAST_KEY_POLL_MS = 2;
const READY_TIMEOUT_MS = 30 * SECOND;
// Generous: the deadline only stops a consumer that is stuck, it is not a target.
const SLOWEST_ROWS_PER_SECOND = 1000;
const READY_JOB_ID = 'fresh-ready';
/** Pause between two reads of the walsender's wait event while the COPY runs (each read is one small query). */
const WALSENDER_SAMPLE_MS = 25;
/** Pause between two reads of the walsender's sent_lsn after COMMIT: the resolution of COMMIT → all WAL sent. */
const SENT_POLL_MS = 5;

/** A way of running the consumer for the freshness line: its name in the table, and what it adds to its environment. */
export interface FreshnessMode {
  name: string;
  consumerEnv: Record<string, string>;
}

/**
 * The consumer's modes measured: protocol 1, where the COPY arrives whole after its commit, and protocol 2 with
 * streaming, where it arrives while it runs (PostgreSQL 14 and later). Another mode is one more line.
 */
export const FRESHNESS_MODES: readonly FreshnessMode[] = [
  { name: 'streaming off', consumerEnv: { BUDGET_CDC_STREAMING: 'off' } },
  { name: 'streaming on', consumerEnv: { BUDGET_CDC_STREAMING: 'on' } },
];

/** One COPY committed in front of a running, caught-up consumer. */
export interface FreshnessRun {
  /** From the COPY's commit returning (psql's exit) until the last row's key was readable in Redis. */
  commitToLastKeySeconds: number;
  /** The COPY, spawn of psql to its exit, with the consumer running. */
  copySeconds: number;
  peakRssBytes: number;
  consumerCpuSeconds: number;
  /** The consumer's CPU from the COPY's start to psql's exit: what it took from the COPY's cores. */
  consumerCpuDuringCopySeconds: number;
  /** WAL the walsender had not sent yet at psql's exit: decoding still to do before the commit reaches the consumer. */
  walNotSentAtCommitBytes: number;
  /** From COMMIT until the walsender had sent all WAL flushed at COMMIT (the commit included): its decoding lag. */
  commitToAllSentSeconds: number;
  /** What the walsender was doing while the COPY ran: reads of pg_stat_activity every WALSENDER_SAMPLE_MS, counted. */
  walsenderDuringCopy: Record<WalsenderActivity, number>;
  /** Redis's CPU (user + system, INFO cpu) from COMMIT until the last key was readable: Redis's share of the wait. */
  redisCpuSeconds: number;
  /** The last row's value and PEXPIRETIME as the consumer wrote them: the floor's must be the same. */
  lastWrite: LastWrite;
}

/** A key's value and PEXPIRETIME. */
interface LastWrite {
  value: string | null;
  expiresAtMs: number;
}

/** Every sample of measureFreshness, per kind, in the order they ran. */
export interface FreshnessRuns {
  /** The same COPY into a fresh database with no consumer and no slot. */
  copyAloneSeconds: number[];
  /** Per mode of FRESHNESS_MODES, by name. */
  withConsumer: Map<string, FreshnessRun[]>;
  /** `redis-cli --pipe` of the consumer's SETs, pre-encoded, into an empty Redis. */
  floorSeconds: number[];
  /** Redis's CPU over each floor sample: the same SETs' cost in Redis when nothing else runs. */
  floorRedisCpuSeconds: number[];
  floorBytes: number;
}

/**
 * What users feel of a bulk load: samples alternated (COPY alone; COPY with the consumer running, per mode; the
 * floor). With the consumer running and caught up, the CSV is committed with psql \copy (one autocommit
 * statement: psql exits as soon as the commit returns), then the last row's key is read every LAST_KEY_POLL_MS
 * until it exists. The consumer writes in commit order, so that key is the last to appear; all keys are counted
 * afterwards. The floor is Redis alone applying the same SETs, encoded by the consumer's own WriteBatch,
 * from a file on one connection: no consumer can make the last key readable sooner after COMMIT.
 */
export async function measureFreshness(
  context: BenchContext,
  samples: number,
  modes: readonly FreshnessMode[] = FRESHNESS_MODES,
): Promise<FreshnessRuns> {
  // The consumer's key prefix for this purpose has the same length: the same bytes per SET.
  const floorPrefix = makeConsumerNames('floor').keyPrefix;
  const respPath = join(dirname(context.csvPath), 'floor.resp');
  context.log(`freshness: encoding the consumer's SETs of ${context.csvPath} into ${respPath}`);
  const encoded = await writeFloorResp(context.csvPath, respPath, floorPrefix);
  if (encoded.commands !== context.rows) throw new Error(`${encoded.commands} SETs encoded for ${context.rows} rows`);
  context.log(`freshness: ${encoded.commands.toLocaleString('en-US')} SETs, ${(encoded.bytes / 1024 / 1024).toFixed(0)} MiB of RESP`);
  context.log(`freshness: modes ${modes.map((mode) => mode.name).join(', ')}`);
  const runs: FreshnessRuns = {
    copyAloneSeconds: [],
    withConsumer: new Map(modes.map((mode) => [mode.name, []])),
    floorSeconds: [],
    floorRedisCpuSeconds: [],
    floorBytes: encoded.bytes,
  };
  try {
    for (let sample = 1; sample <= samples; sample++) {
      const alone = await timeCopyAlone(context);
      runs.copyAloneSeconds.push(alone);
      context.log(`freshness ${sample}/${samples}: COPY alone ${alone.toFixed(2)} s`);
      for (const mode of modes) {
        const run = await timeCommitToLastKey(context, mode);
        runs.withConsumer.get(mode.name)!.push(run);
        context.log(
          `freshness ${sample}/${samples}, ${mode.name}: COMMIT → last key ${run.commitToLastKeySeconds.toFixed(2)} s, ` +
            `COPY with the consumer ${run.copySeconds.toFixed(2)} s, consumer CPU ${run.consumerCpuSeconds.toFixed(2)} s ` +
            `(${run.consumerCpuDuringCopySeconds.toFixed(2)} s during the COPY), ` +
            `WAL not sent at COMMIT ${(run.walNotSentAtCommitBytes / 1024 / 1024).toFixed(1)} MiB, ` +
            `Redis CPU after COMMIT ${run.redisCpuSeconds.toFixed(2)} s`,
        );
      }
      const consumerWrote = runs.withConsumer.get(modes[0]!.name)!.at(-1)!.lastWrite;
      const floor = await timeFloor(context, respPath, floorPrefix + jobId(context.rows - 1), consumerWrote);
      runs.floorSeconds.push(floor.seconds);
      runs.floorRedisCpuSeconds.push(floor.redisCpuSeconds);
      context.log(
        `freshness ${sample}/${samples}: floor (redis-cli --pipe) ${floor.seconds.toFixed(2)} s, Redis CPU ${floor.redisCpuSeconds.toFixed(2)} s`,
      );
    }
  } finally {
    await rm(respPath, { force: true });
  }
  return runs;
}

/** psql \copy of the CSV into a fresh, migrated database that has no slot: seconds from spawn to exit. */
async function timeCopyAlone(context: BenchContext): Promise<number> {
  return withFreshDatabase(context.adminUrl, 'bench_copy_alone', { migrated: true }, async (databaseUrl) => {
    const seconds = await startPsqlCopy(databaseUrl, context.csvPath).succeeded();
    const loaded = await withPgClient(databaseUrl, countJobs);
    if (loaded !== context.rows) throw new Error(`psql \\copy loaded ${loaded} rows instead of ${context.rows}`);
    return seconds;
  });
}

/** The COPY committed in front of a consumer that streams and is caught up; the time until the last key is readable. */
async function timeCommitToLastKey(context: BenchContext, mode: FreshnessMode): Promise<FreshnessRun> {
  const names = makeConsumerNames('fresh');
  const redis = singleRedis(context);
  return withFreshDatabase(context.adminUrl, 'bench_fresh', { migrated: false }, (databaseUrl) =>
    withPgClient(databaseUrl, async (client) => {
      const consumer = await startConsumer(context, databaseUrl, names, { ...redis.consumerEnv, ...mode.consumerEnv });
      try {
        await waitForSlotAndCheckpoint(redis, client, consumer, names);
        // One row first: once its key is in Redis the consumer streams and has nothing left to do.
        await insertJob(client, READY_JOB_ID);
        await consumer.waitWhileRunning(async () => (await context.redis.exists(names.keyPrefix + READY_JOB_ID)) === 1, {
          timeoutMs: READY_TIMEOUT_MS,
          intervalMs: LAST_KEY_POLL_MS,
          message: 'the first row to reach Redis',
        });

        const consumerCpuBeforeCopy = consumer.cpuSeconds();
        const copy = startPsqlCopy(databaseUrl, context.csvPath);
        const [copySeconds, walsenderDuringCopy] = await Promise.all([copy.succeeded(), sampleWalsender(client, names.slot, copy)]);
        const consumerCpuDuringCopySeconds = consumer.cpuSeconds() - consumerCpuBeforeCopy;
        const committedAt = copy.exit!.at;
        const [redisCpuAtCommit, walNotSentAtCommitBytes, flushedAtCommit] = await Promise.all([
          redisCpuSeconds(redis),
          walNotSentBytes(client, names.slot),
          currentWalFlushLsn(client),
        ]);
        const allSentAt = waitUntilSent(client, names.slot, flushedAtCommit, consumer);
        // Awaited after the last key; should the wait for the last key fail first, this one's failure is not unhandled.
        allSentAt.catch(() => undefined);
        const lastKey = names.keyPrefix + jobId(context.rows - 1);
        const readableAt = await consumer.waitWhileRunning(
          async () => ((await context.redis.exists(lastKey)) === 1 ? performance.now() : 0),
          {
            timeoutMs: 10 * MINUTE + (context.rows / SLOWEST_ROWS_PER_SECOND) * SECOND,
            intervalMs: LAST_KEY_POLL_MS,
            message: `${lastKey}, the last row's key`,
          },
        );
        const redisCpu = (await redisCpuSeconds(redis)) - redisCpuAtCommit;
        const commitToAllSentSeconds = ((await allSentAt) - committedAt) / SECOND;
        const peakRssBytes = consumer.peakRssBytes();
        const consumerCpuSeconds = consumer.cpuSeconds();
        await consumer.stop();
        const lastWrite = await readWrite(context, lastKey);

        const [keys] = await countKeysPerMaster(redis.masters, globLiteral(names.keyPrefix) + '*');
        if (keys !== context.rows + 1)
          throw new Error(`${keys} keys under ${names.keyPrefix} after a COPY of ${context.rows} rows and one row`);
        const commitToLastKeySeconds = (readableAt - committedAt) / SECOND;
        return {
          commitToLastKeySeconds,
          copySeconds,
          peakRssBytes,
          consumerCpuSeconds,
          consumerCpuDuringCopySeconds,
          walNotSentAtCommitBytes,
          commitToAllSentSeconds,
          walsenderDuringCopy,
          redisCpuSeconds: redisCpu,
          lastWrite,
        };
      } finally {
        if (consumer.exit === undefined) {
          consumer.process.kill('SIGKILL');
          await consumer.exited;
        }
        await context.redis.flushall();
      }
    }),
  );
}

/** Reads the walsender's wait event every WALSENDER_SAMPLE_MS until `copy` exits; the reads counted per activity. */
async function sampleWalsender(client: pg.Client, slotName: string, copy: BenchChild): Promise<Record<WalsenderActivity, number>> {
  const counts: Record<WalsenderActivity, number> = { onCpu: 0, waitingForWal: 0, waitingForConsumer: 0, otherWait: 0 };
  while (copy.exit === undefined) {
    counts[await walsenderActivity(client, slotName)]++;
    // Ends with the COPY, not after a full pause: the WAL not sent at COMMIT is read right after psql's exit.
    await Promise.race([delay(WALSENDER_SAMPLE_MS), copy.exited]);
  }
  return counts;
}

/** When the walsender had sent everything before `lsn`, read every SENT_POLL_MS while the consumer runs. */
async function waitUntilSent(client: pg.Client, slotName: string, lsn: string, consumer: BenchChild): Promise<number> {
  return consumer.waitWhileRunning(async () => ((await walSentUpTo(client, slotName, lsn)) ? performance.now() : 0), {
    timeoutMs: 10 * MINUTE,
    intervalMs: SENT_POLL_MS,
    message: `the walsender of ${slotName} to send the WAL up to ${lsn}`,
  });
}

/**
 * `redis-cli --pipe < respPath` into the emptied bench Redis: seconds from spawn to exit (redis-cli waits for every
 * reply). Its `lastKey` must hold what the consumer wrote at its own key for the same row.
 */
async function timeFloor(
  context: BenchContext,
  respPath: string,
  lastKey: string,
  consumerWrote: LastWrite,
): Promise<{ seconds: number; redisCpuSeconds: number }> {
  await context.redis.flushall();
  try {
    const redis = singleRedis(context);
    const redisCpuBefore = await redisCpuSeconds(redis);
    const input = openSync(respPath, 'r');
    let pipe: BenchChild;
    try {
      pipe = new BenchChild('redis-cli --pipe', 'redis-cli', ['-u', context.redisUrl, '--pipe'], { stdin: input });
    } finally {
      closeSync(input);
    }
    const seconds = await pipe.succeeded();
    const redisCpu = (await redisCpuSeconds(redis)) - redisCpuBefore;
    // Its last line: "errors: 0, replies: 1000000".
    const summary = /errors: (\d+), replies: (\d+)/.exec(pipe.outputTail());
    if (summary === null || summary[1] !== '0' || Number(summary[2]) !== context.rows) {
      throw new Error(`redis-cli --pipe did not apply ${context.rows} SETs without error${pipe.outputTail()}`);
    }
    const keys = await context.redis.dbsize();
    if (keys !== context.rows) throw new Error(`${keys} keys in Redis after redis-cli --pipe of ${context.rows} SETs`);
    const floorWrote = await readWrite(context, lastKey);
    if (floorWrote.value !== consumerWrote.value || floorWrote.expiresAtMs !== consumerWrote.expiresAtMs) {
      throw new Error(
        `the floor's SETs are not the consumer's: ${lastKey} holds ${floorWrote.value} (PEXPIRETIME ${floorWrote.expiresAtMs}), ` +
          `the consumer wrote ${consumerWrote.value} (PEXPIRETIME ${consumerWrote.expiresAtMs})`,
      );
    }
    return { seconds, redisCpuSeconds: redisCpu };
  } finally {
    await context.redis.flushall();
  }
}

async function readWrite(context: BenchContext, key: string): Promise<LastWrite> {
  const [value, expiresAtMs] = await Promise.all([context.redis.get(key), context.redis.pexpiretime(key)]);
  return { value, expiresAtMs };
}

async function insertJob(client: pg.Client, id: string): Promise<void> {
  await client.query('insert into jobs (job_id, days_online, budget) values ($1, 7, 700.07)', [id]);
}
