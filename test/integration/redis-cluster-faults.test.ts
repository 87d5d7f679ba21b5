import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Cluster } from 'ioredis';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { hashSlot } from '../../src/sink/hash-slot.js';
import { rebuildHistoryKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, startCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import {
  clusterInfo,
  clusterNodes,
  reshardCluster,
  slotsByMaster,
  startRedisCluster,
  waitForClusterAgreement,
  withConnection,
  type RedisCluster,
  type RedisClusterNode,
} from '../support/redis-cluster.js';
import { changeSingleRows } from '../support/crash-scenario.js';
import { compareRedisWithTable, expectedFromTable, findDifferences } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// The cluster sink under the faults a Redis Cluster lives with: slots moving between masters while rows stream
// (ASK, TRYAGAIN, MOVED), a master killed and replaced by its replica, and the consumer itself killed -9 between
// two slots' transactions. Each ends with Redis equal to the table, keys and expiries.

const SECOND = 1000;
/** Rows changed one at a time, over and over, while a fault happens: writes that land in the slots being moved. */
/** kill -9 of the consumer, each at a random moment after it acknowledged something. */
const KILLS = 4;

describe('Redis Cluster: faults', () => {
  /** Run after each test, last first: consumers before the fixture, the fixture before the cluster. */
  const cleanups: Array<() => Promise<void> | void> = [];

  afterEach(async () => {
    await killLiveCliProcesses();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A 3+3 cluster, a fixture of its own and a reader that follows redirections; all removed after the test. */
  async function setUp(name: string): Promise<{ cluster: RedisCluster; fx: PipelineFixture }> {
    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    cleanups.push(() => cluster.stop());
    const fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), name);
    cleanups.push(() => fx.close());
    return { cluster, fx };
  }

  /** A client on the nodes still running (a killed master's address would only make it wait). */
  async function makeReader(nodes: RedisClusterNode[]): Promise<Cluster> {
    const reader = new Cluster(
      nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { enableAutoPipelining: true },
    );
    reader.on('error', () => undefined);
    cleanups.push(() => reader.disconnect());
    await waitFor(() => reader.status === 'ready', { message: 'the reader to learn the slot map' });
    return reader;
  }

  /** Starts changeSingleRows; the function returned stops it, and so does the end of the test, failed or not. */
  function startSingleChanges(fx: PipelineFixture): () => Promise<void> {
    let running = true;
    const done = changeSingleRows(fx.database.url, () => running);
    const stop = async () => {
      running = false;
      await done;
    };
    cleanups.push(() => stop().catch(() => undefined));
    return stop;
  }

  /** Starts the consumer in this process, recording why it rebuilt Redis and how often its session failed. */
  async function startConsumer(fx: PipelineFixture, port: number): Promise<{ consumer: Consumer; rebuilds: string[]; progress: Progress }> {
    const consumer = await fx.startConsumer({ redisClusterNodes: [{ host: '127.0.0.1', port }] });
    const rebuilds: string[] = [];
    const progress: Progress = { rows: 0, sessionFailures: [], redirected: 0 };
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    consumer.events.on('batch-written', ({ rows }) => (progress.rows += rows));
    consumer.events.on('redis-redirected', ({ transactions }) => (progress.redirected += transactions));
    consumer.events.on('session-failed', ({ error }) => progress.sessionFailures.push(error.message));
    await waitFor(() => fx.confirmedLsn(), { message: 'the consumer to create its slot' });
    return { consumer, rebuilds, progress };
  }

  it(
    'moves thousands of slots between masters while 200,000 rows stream, and ends equal to the table with no rebuild',
    { timeout: 150 * SECOND },
    async ({ annotate }) => {
      const { cluster, fx } = await setUp('reshard');
      const port = cluster.nodes[0]!.port;
      const { rebuilds, progress } = await startConsumer(fx, port);
      const [source, target] = (await clusterNodes(port)).filter(({ flags }) => flags.includes('master')).map(({ id }) => id);
      const sourceSlotsBefore = new Set((await slotsByMaster(port)).get(source!));

      const stopSingleChanges = startSingleChanges(fx);
      const load = loadJobs(fx.database.url, 'bulk', 200_000);
      // Moved while rows stream: the consumer's slot transactions meet slots half moved.
      await waitFor(() => progress.rows > 5_000, { timeoutMs: 60 * SECOND, message: 'the consumer to write the first rows' });
      const rowsBeforeReshard = progress.rows;
      await reshardCluster(port, { from: source!, to: target!, slots: 3_000 });
      const targetSlotsBetween = (await slotsByMaster(port)).get(target!)!;
      const movedFirst = targetSlotsBetween.filter((slot) => sourceSlotsBefore.has(slot));
      expect(movedFirst).toHaveLength(3_000);
      await waitForClusterAgreement(cluster.nodes.map((node) => node.port));
      // And some the other way, the target's lowest slots: some of those just moved there.
      await reshardCluster(port, { from: target!, to: source!, slots: 1_000 });
      const rowsDuringReshards = progress.rows - rowsBeforeReshard;
      await load;
      await stopSingleChanges();
      expect(rowsDuringReshards).toBeGreaterThan(0);
      // Rows streamed into slots that moved: the writer was redirected and followed (budget_cdc_redis_redirects_total).
      expect(progress.redirected).toBeGreaterThan(0);

      await waitForConfirmedOrSay(fx, progress, rebuilds);
      const reader = await makeReader(cluster.nodes);
      const slotsAfter = await slotsByMaster(port);
      const targetSlotsAfter = new Set(slotsAfter.get(target!));
      const movedEver = new Set([...movedFirst, ...targetSlotsBetween.filter((slot) => !targetSlotsAfter.has(slot))]);
      const { drifted, differences } = await differencesBesidesMigrateDrift(fx, reader, movedEver);
      expect(differences).toEqual([]);

      // The keys are where the cluster now says: on the target for the slots it kept, none left on the source.
      const moved = [...targetSlotsAfter].filter((slot) => sourceSlotsBefore.has(slot));
      expect(moved.length).toBeGreaterThanOrEqual(1_000);
      const movedSet = new Set(moved);
      const { rows } = await fx.sql.query<{ job_id: string }>('select job_id from jobs');
      const jobsInMoved = rows.filter(({ job_id }) => movedSet.has(hashSlot(fx.config.keyPrefix + job_id))).length;
      expect(jobsInMoved).toBeGreaterThan(10_000);
      const [sourcePort, targetPort] = await portsOf(port, [source!, target!]);
      // Each moved slot also holds its checkpoint key.
      expect(await countKeysInSlots(targetPort!, moved)).toBeGreaterThanOrEqual(jobsInMoved + moved.length);
      expect(await countKeysInSlots(sourcePort!, moved)).toBe(0);
      expect(rebuilds).toEqual(['new-slot']);
      annotate(
        `slots moved: 3000, then 1000 back (${movedEver.size} in all, ${moved.length} still moved); ` +
          `rows written during the reshards: ${rowsDuringReshards}; keys MIGRATE made expire later: ${drifted}; ` +
          `session failures: ${progress.sessionFailures.length} ${progress.sessionFailures.join(' | ')}`,
      );
    },
  );

  // After slots moved, ioredis's slot map is stale: a new session's 16,384 checkpoint reads must follow each MOVED
  // (they once came back with MOVED for good, when ioredis auto-pipelined them).
  it('resumes after its session restarts following a reshard', { timeout: 60 * SECOND }, async () => {
    const { cluster, fx } = await setUp('restart');
    const port = cluster.nodes[0]!.port;
    const { progress } = await startConsumer(fx, port);
    const [source, target] = (await clusterNodes(port)).filter(({ flags }) => flags.includes('master')).map(({ id }) => id);
    await insertJobs(fx, 'before', 1_000);
    const sourceSlots = new Set((await slotsByMaster(port)).get(source!));
    await reshardCluster(port, { from: source!, to: target!, slots: 100 });
    const sourceSlotsAfter = new Set((await slotsByMaster(port)).get(source!));
    // Keys MIGRATE moved may expire a few ms late: Redis moves a key's time to live, not its expiry.
    const moved = new Set([...sourceSlots].filter((slot) => !sourceSlotsAfter.has(slot)));
    await insertJobs(fx, 'moved', 1_000);
    // The session ends as on a PostgreSQL restart or a network cut; the consumer starts a new one.
    await fx.sql.query('select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1', [fx.config.slotName]);
    await waitFor(() => progress.sessionFailures.length > 0, { message: 'the session to fail' });
    await insertJobs(fx, 'after', 1_000, 10 * SECOND);
    const reader = await makeReader(cluster.nodes);
    expect(moved.size).toBe(100);
    expect((await differencesBesidesMigrateDrift(fx, reader, moved)).differences).toEqual([]);
  });

  it(
    'converges with no manual step after a master is killed -9 mid-load and its replica takes over',
    { timeout: 150 * SECOND },
    async ({ annotate }) => {
      const { cluster, fx } = await setUp('failover');
      const port = cluster.nodes[0]!.port;
      const { consumer, rebuilds, progress } = await startConsumer(fx, port);
      const topology = await clusterNodes(port);
      const victim = topology.find(({ flags }) => flags.includes('master'))!;
      const heir = topology.find(({ masterId }) => masterId === victim.id)!;
      const victimNode = cluster.nodes.find((node) => node.port === victim.port)!;
      const survivors = cluster.nodes.filter((node) => node !== victimNode);

      const stopSingleChanges = startSingleChanges(fx);
      const load = loadJobs(fx.database.url, 'bulk', 120_000);
      await waitFor(() => progress.rows > 10_000, { timeoutMs: 60 * SECOND, message: 'the consumer to write the first rows' });
      const rowsBeforeCrash = progress.rows;
      await victimNode.crash();
      await waitFor(
        async () =>
          (await clusterNodes(heir.port)).find(({ id }) => id === heir.id)!.flags.includes('master') &&
          (await clusterInfo(heir.port)).get('cluster_state') === 'ok',
        { timeoutMs: 60 * SECOND, message: `the replica on port ${heir.port} to take over from the killed master` },
      );
      await load;
      await stopSingleChanges();

      // Killed while the load streamed, not after the consumer had written it all.
      expect(rowsBeforeCrash).toBeLessThan(120_000);

      await waitForConfirmedOrSay(fx, progress, rebuilds);
      const reader = await makeReader(survivors);
      expect(await compareRedisWithTable(fx.sql, reader, fx.config.keyPrefix)).toEqual([]);
      expect(consumer.health()).toMatchObject({ redisConnected: true, streaming: true, role: 'active' });
      // Without --redis-min-replicas the replica may have missed acknowledged writes: the consumer then rebuilds.
      expect(rebuilds[0]).toBe('new-slot');
      for (const cause of rebuilds.slice(1)) expect(cause).toBe('redis-went-back');
      annotate(
        `rebuilds: ${rebuilds.join(', ')}; session failures: ${progress.sessionFailures.length} ${progress.sessionFailures.join(' | ')}`,
      );
    },
  );

  it(
    'converges with no rebuild after the consumer is killed -9 at random points of loads on the cluster',
    { timeout: 150 * SECOND },
    async ({ annotate }) => {
      const { cluster, fx } = await setUp('kill');
      const env = {
        ...fx.cliEnv(),
        REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.nodes[0]!.port}`,
        LOG_LEVEL: 'warn',
        BUDGET_CDC_HTTP_PORT: '0',
      };
      const reader = await makeReader(cluster.nodes);
      const historyKey = rebuildHistoryKey(fx.config.keyPrefix);
      let consumer: CliProcess = startCli(['run'], env);
      // The first rebuild must be over, or a kill during it would make the next start rebuild again for that reason.
      await waitFor(async () => (await reader.hget(historyKey, 'new-slot')) === '1', {
        timeoutMs: 60 * SECOND,
        message: 'the consumer to create its slot and load the (empty) table',
      });

      const stopSingleChanges = startSingleChanges(fx);
      // Loads of 50,000 rows one after another until the last kill, so that every kill meets one streaming;
      // each waits for the consumer to confirm the one before, so it is never more than two loads behind.
      let killing = true;
      let rounds = 0;
      const loads = (async () => {
        for (; rounds === 0 || killing; rounds++) {
          const before = await fx.currentLsn();
          await loadJobs(fx.database.url, `bulk${rounds}`, 50_000);
          await fx.waitForConfirmed(before, 60 * SECOND);
        }
      })();
      const stderr: string[] = [];
      try {
        for (let kill = 0; kill < KILLS; kill++) {
          const startLsn = await fx.confirmedLsn();
          // Killed only once it acknowledged something: a kill before would test the start alone.
          await waitFor(async () => ((await fx.confirmedLsn()) ?? 0n) > (startLsn ?? 0n), {
            timeoutMs: 60 * SECOND,
            message: `the consumer restarted ${kill} times to acknowledge a position`,
          });
          // A random moment: not a wait for a condition but the point of the test, to hit any step of a batch.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 1_500));
          consumer.child.kill('SIGKILL');
          const outcome = await consumer.closed;
          expect(outcome.signal).toBe('SIGKILL');
          stderr.push(outcome.stderr);
          consumer = startCli(['run'], env);
        }
      } finally {
        killing = false;
      }
      await loads;
      await stopSingleChanges();

      await fx.waitForConfirmed(undefined, 120 * SECOND);
      expect(await compareRedisWithTable(fx.sql, reader, fx.config.keyPrefix)).toEqual([]);
      const history = await reader.hgetall(historyKey);
      // 'last' and 'distribution' (the rule it used) describe the last rebuild; the rest count rebuilds by cause.
      expect(Object.keys(history).filter((field) => field !== 'last' && field !== 'distribution')).toEqual(['new-slot']);
      expect(history.distribution).toBe('even');
      expect(history['new-slot']).toBe('1');
      consumer.child.kill('SIGTERM');
      const last = await consumer.exit();
      expect(last.code, last.stderr).toBe(0);
      // The killed consumers' logs agree: one load from the table, the first.
      const warnings = stderr
        .flatMap((text) => text.split('\n').filter((line) => line !== ''))
        .map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(warnings.filter((message) => message.startsWith('resync'))).toEqual(['resync from the table started']);
      annotate(`${KILLS} kills during ${rounds} loads of 50,000 rows; the killed consumers' warnings and errors: ${warnings.join(' | ')}`);
    },
  );
});

/** fx.waitForConfirmed (120 s), whose timeout also says what the consumer went through. */
async function waitForConfirmedOrSay(fx: PipelineFixture, progress: Progress, rebuilds: string[]): Promise<void> {
  try {
    await fx.waitForConfirmed(undefined, 120 * SECOND);
  } catch (error) {
    const failures = progress.sessionFailures;
    throw new Error(
      `${(error as Error).message}; rebuilds: ${rebuilds.join(', ')}; ${failures.length} session failures, the last 10: ${failures.slice(-10).join(' | ')}`,
      { cause: error },
    );
  }
}

interface Progress {
  /** Rows the consumer wrote (batch-written). */
  rows: number;
  sessionFailures: string[];
  /** Slot transactions the writer sent again after MOVED, ASK, TRYAGAIN or CLUSTERDOWN ('redis-redirected'). */
  redirected: number;
}

/**
 * Loads `rows` jobs `<name>-<n>` in commits of several sizes, each on the connection it opens: big
 * INSERT … SELECTs, a COPY, many small INSERTs, then an UPDATE of every fifth job and a DELETE of every
 * thirteenth (changes to keys that exist, in every slot).
 */
async function loadJobs(databaseUrl: string, name: string, rows: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const insert = (first: number, last: number) =>
      client.query(
        `insert into jobs (job_id, days_online, budget)
         select $1 || '-' || g, 1 + g % 30, (g % 100000) + (g % 100) / 100.0 from generate_series($2::int, $3::int) g`,
        [name, first, last],
      );
    const big = Math.floor(rows * 0.3);
    await insert(0, big - 1);
    await insert(big, 2 * big - 1);
    const copied = Math.floor(rows * 0.3);
    async function* lines(): AsyncGenerator<string> {
      for (let start = 2 * big; start < 2 * big + copied; start += 10_000) {
        const chunk: string[] = [];
        for (let i = start; i < Math.min(start + 10_000, 2 * big + copied); i++)
          chunk.push(`${name}-${i},${1 + (i % 30)},${i % 100_000}.25\n`);
        yield chunk.join('');
      }
    }
    await pipeline(Readable.from(lines()), client.query(copyFrom('copy jobs (job_id, days_online, budget) from stdin with (format csv)')));
    const small = 20;
    const rest = rows - 2 * big - copied;
    for (let n = 0; n < small; n++) {
      const first = 2 * big + copied + Math.floor((rest * n) / small);
      await insert(first, 2 * big + copied + Math.floor((rest * (n + 1)) / small) - 1);
    }
    await client.query(`update jobs set budget = budget + 1, days_online = 1 + days_online % 29 where id % 5 = 0 and job_id like $1`, [
      `${name}-%`,
    ]);
    await client.query(`delete from jobs where id % 13 = 0 and job_id like $1`, [`${name}-%`]);
  } finally {
    await client.end();
  }
}

/**
 * How much later than the table says a key may expire once MIGRATE moved it: MIGRATE sends a key's TTL as
 * time left (DUMP, then RESTORE without ABSTTL), so the target's absolute expiry is later by the time the move
 * took, a few milliseconds. The consumer writes PXAT, exact, so nothing else may drift.
 */
const MIGRATE_DRIFT_MS = 1_000;

/**
 * The oracle's differences, less the expiries MIGRATE made later (a key in `movedSlots`, at most
 * MIGRATE_DRIFT_MS late): those are Redis's doing (see MIGRATE_DRIFT_MS), not the consumer's.
 */
async function differencesBesidesMigrateDrift(
  fx: PipelineFixture,
  reader: Cluster,
  movedSlots: ReadonlySet<number>,
): Promise<{ drifted: number; differences: string[] }> {
  const prefix = fx.config.keyPrefix;
  const { alive } = await expectedFromTable(fx.sql);
  let drifted = 0;
  const differences: string[] = [];
  for (const difference of await findDifferences(fx.sql, reader, prefix)) {
    const key = prefix + difference.jobId;
    if (difference.kind === 'later-expiry' && movedSlots.has(hashSlot(key))) {
      const late = (await reader.pexpiretime(key)) - alive.get(difference.jobId)!.pexpiretime;
      if (late > 0 && late <= MIGRATE_DRIFT_MS) {
        drifted++;
        continue;
      }
    }
    differences.push(`${difference.jobId}: ${difference.detail}`);
  }
  return { drifted, differences };
}

/** Inserts `count` jobs `<name>-<n>` in one statement and waits until the consumer confirmed them. */
async function insertJobs(fx: PipelineFixture, name: string, count: number, timeoutMs = 20 * SECOND): Promise<void> {
  await fx.sql.query(`insert into jobs (job_id, days_online, budget) select $1 || '-' || g, 5, 1.00 from generate_series(1, $2::int) g`, [
    name,
    count,
  ]);
  await fx.waitForConfirmed(undefined, timeoutMs);
}

/** The ports of the nodes with `ids`, in that order. */
async function portsOf(port: number, ids: string[]): Promise<number[]> {
  const nodes = await clusterNodes(port);
  return ids.map((id) => nodes.find((node) => node.id === id)!.port);
}

/** The keys the node on `port` itself holds in `slots` (CLUSTER COUNTKEYSINSLOT counts only its own). */
async function countKeysInSlots(port: number, slots: number[]): Promise<number> {
  return withConnection(port, async (redis) => {
    const batch = redis.pipeline();
    for (const slot of slots) batch.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot));
    const replies = (await batch.exec())!;
    return replies.reduce((sum, [error, count]) => {
      if (error) throw error;
      return sum + Number(count);
    }, 0);
  });
}
