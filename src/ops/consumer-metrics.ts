import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ConsumerEvents } from '../consumer/consumer-events.js';
import { RedisWriteError } from '../errors.js';
import { REBUILD_CAUSES } from '../sink/rebuild-record.js';
import { registerDistributionMetrics } from './distribution-metrics.js';
import type { FailureTracker } from './failure-tracker.js';
import type { SlotMonitor } from './slot-monitor.js';

const PREFIX = 'budget_cdc_';
const SECOND_MS = 1000;
/** From 1 ms to about 16 s: a small batch to a large, slow one. */
const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 16];
/** From 1 ms (a small transaction on a quiet stream) to 10 minutes (behind a large backfill or an outage). */
const FRESHNESS_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * A Prometheus registry of one consumer, fed only by subscribing to its events, the slot monitor's
 * readings and the Redis client's 'error' event: nothing on the hot path calls a metric.
 */
export function makeConsumerMetrics(
  events: ConsumerEvents,
  monitor: SlotMonitor,
  redisClient: EventEmitter,
  failures: FailureTracker,
): Registry {
  const registry = new Registry();
  const registers = [registry];
  const counter = (name: string, help: string): Counter => new Counter({ name: PREFIX + name, help, registers });
  const gauge = (name: string, help: string): Gauge => new Gauge({ name: PREFIX + name, help, registers });

  const batches = counter('batches_written_total', 'Batches Redis confirmed (one MULTI/EXEC each).');
  const rowsApplied = counter(
    'rows_applied_total',
    'Inserts, updates and deletes of jobs written to Redis (replays skipped by the checkpoint excluded).',
  );
  const transactionsApplied = counter('transactions_applied_total', 'Transactions whose last change Redis confirmed.');
  const writes = counter(
    'redis_writes_total',
    'Writes Redis confirmed: a SET or DEL per applied change (two for a renamed job), and dead letters.',
  );
  const stageDuration = new Histogram({
    name: PREFIX + 'stage_duration_seconds',
    help:
      'Time spent per pipeline stage and batch. stage="build": decoding, budgeting and encoding the batch ' +
      '(processing its share of the replication stream, not waiting for it); stage="write": from sending a batch ' +
      'to Redis to its confirmation; stage="acknowledge": from that confirmation to the acknowledgement sent to ' +
      'PostgreSQL (earlier batches, replicas), for batches that end a transaction.',
    labelNames: ['stage'],
    buckets: DURATION_BUCKETS_SECONDS,
    registers,
  });
  const commitToRedis = new Histogram({
    name: PREFIX + 'commit_to_redis_seconds',
    help:
      "Per transaction, from its COMMIT (PostgreSQL's clock) to Redis confirming its last write (this host's " +
      'clock): how stale a reader can be. Clock skew between the hosts shifts it; a negative value (consumer ' +
      'clock behind) is counted as 0. Replayed and empty transactions are not counted.',
    buckets: FRESHNESS_BUCKETS_SECONDS,
    registers,
  });
  const acknowledgements = counter(
    'acknowledgements_total',
    'Positions acknowledged to PostgreSQL after Redis confirmed everything before them.',
  );
  const acknowledgedLsn = gauge(
    'acknowledged_lsn',
    'The last WAL position acknowledged to PostgreSQL, as a number (precision is lost beyond 2^53).',
  );
  const deadLetters = counter('dead_letters_total', 'Rows set aside as dead letters because they cannot be processed.');
  const sessions = counter('sessions_started_total', 'Replication sessions that started streaming.');
  const reconnects = counter('reconnects_total', 'Replication sessions that failed; each is followed by a reconnect after a delay.');
  const redisErrors = counter(
    'redis_errors_total',
    'Redis connection errors, and sessions that failed because Redis refused or lost a write.',
  );
  const resyncs = new Counter({
    name: PREFIX + 'resyncs_total',
    help:
      'Rebuilds of Redis from the table, by cause: new_slot, slot_lost, redis_empty (Redis lost everything), ' +
      'redis_went_back (an older checkpoint than acknowledged: older RDB/AOF, failover), requested (budget-cdc resync).',
    labelNames: ['cause'],
    registers,
  });
  for (const cause of REBUILD_CAUSES) resyncs.inc({ cause: cause.replaceAll('-', '_') }, 0);
  const replicasConfirmed = gauge(
    'redis_replicas_confirmed',
    'Replicas that confirmed the last write (WAIT), with --redis-min-replicas above 0.',
  );
  const replicasBehind = gauge(
    'redis_replicas_behind',
    '1 while fewer replicas than --redis-min-replicas confirmed the last write: acknowledgements are held.',
  );
  const replicaWaitsShort = counter(
    'redis_replica_waits_short_total',
    'WAITs that returned fewer replicas than --redis-min-replicas (each is asked again).',
  );
  const active = gauge('active', "1 while this process is the slot's active consumer, 0 while it is a standby or starting.");
  const evictionPolicy = new Gauge({
    name: PREFIX + 'redis_maxmemory_policy',
    help: "1 for Redis's current maxmemory-policy; any policy but noeviction can delete job keys before their expiry.",
    labelNames: ['policy'],
    registers,
  });
  const evictedKeys = gauge('redis_evicted_keys', 'Keys Redis evicted under memory pressure since it started (INFO stats evicted_keys).');
  new Gauge({
    name: PREFIX + 'consecutive_failures',
    help: 'Replication sessions that failed in a row with no progress in between; 0 once one acknowledges or streams for 10 s.',
    registers,
    collect() {
      this.set(failures.current()?.consecutiveFailures ?? 0);
    },
  });
  const replicaIdentityFull = gauge(
    'jobs_replica_identity_full',
    '1 when the jobs table has REPLICA IDENTITY FULL, 0 when not: a renamed or deleted job then keeps its key (see status).',
  );
  const missingColumns = gauge(
    'jobs_missing_columns',
    'Contract columns (job_id, days_online, budget, created_at) the jobs table lacks: its changes are set aside while any is missing.',
  );
  const permanentErrors = counter('permanent_errors_total', 'Errors retrying cannot cure, after which the consumer stopped.');
  const resyncRows = counter('resync_rows_written_total', 'Rows written by resyncs.');
  const truncates = counter('truncates_total', 'TRUNCATEs applied (every key under the prefix removed).');
  const redirects = counter(
    'redis_redirects_total',
    'Redis Cluster slot transactions sent again after MOVED, ASK, TRYAGAIN or CLUSTERDOWN (resharding, failover).',
  );
  const backpressure = gauge('backpressure', '1 while reading from PostgreSQL is paused because Redis writes are behind.');
  // Absent rather than 0 while unknown: 0 bytes of safe WAL would read as "about to be lost".
  const optionalGauge = (name: string, help: string): ((value: bigint | number | undefined) => void) => {
    let metric: Gauge | undefined;
    return (value) => {
      if (value === undefined) {
        if (metric !== undefined) registry.removeSingleMetric(PREFIX + name);
        metric = undefined;
        return;
      }
      metric ??= gauge(name, help);
      metric.set(Number(value));
    };
  };
  const lagBytes = optionalGauge('lag_bytes', "WAL written since the slot's confirmed position.");
  const lagSeconds = optionalGauge(
    'lag_seconds',
    'Seconds since PostgreSQL wrote the oldest WAL the slot has not confirmed (sampled every second).',
  );
  const retainedBytes = optionalGauge('retained_wal_bytes', 'WAL PostgreSQL keeps for the slot.');
  const safeWalSize = optionalGauge(
    'safe_wal_size_bytes',
    'WAL that can be written before the slot is in danger of being lost (absent when max_slot_wal_keep_size is unlimited).',
  );
  const slotActive = gauge('slot_active', '1 when a walsender streams from the slot.');
  registerDistributionMetrics(registry, events);

  // Children bound once: labels are not looked up again for every batch.
  const buildStage = stageDuration.labels({ stage: 'build' });
  const writeStage = stageDuration.labels({ stage: 'write' });
  const acknowledgeStage = stageDuration.labels({ stage: 'acknowledge' });
  events.on('batch-written', ({ writes: count, rows, transactions, durationMs, buildMs }) => {
    batches.inc();
    rowsApplied.inc(rows);
    transactionsApplied.inc(transactions);
    writes.inc(count);
    buildStage.observe(buildMs / SECOND_MS);
    writeStage.observe(durationMs / SECOND_MS);
  });
  events.on('transactions-visible', ({ commitTimesMs }) => {
    const now = Date.now();
    // The two clocks are different hosts': a commit "in the future" is skew, not negative freshness.
    for (const commitTimeMs of commitTimesMs) commitToRedis.observe(Math.max(0, now - commitTimeMs) / SECOND_MS);
  });
  events.on('acknowledged', ({ lsn, sinceWrittenMs }) => {
    acknowledgements.inc();
    acknowledgedLsn.set(Number(lsn));
    if (sinceWrittenMs !== undefined) acknowledgeStage.observe(sinceWrittenMs / SECOND_MS);
  });
  events.on('dead-letter', () => deadLetters.inc());
  events.on('redis-redirected', ({ transactions }) => redirects.inc(transactions));
  events.on('session-started', () => sessions.inc());
  events.on('session-failed', ({ error }) => {
    reconnects.inc();
    if (error instanceof RedisWriteError) redisErrors.inc();
  });
  events.on('resync-started', ({ cause }) => resyncs.inc({ cause: cause.replaceAll('-', '_') }));
  events.on('replicas-behind', ({ replicas }) => {
    replicasConfirmed.set(replicas);
    replicasBehind.set(1);
    replicaWaitsShort.inc();
  });
  events.on('replicas-confirmed', ({ replicas }) => {
    replicasConfirmed.set(replicas);
    replicasBehind.set(0);
  });
  events.on('role', ({ role }) => active.set(role === 'active' ? 1 : 0));
  events.on('permanent-error', () => permanentErrors.inc());
  events.on('table-described', ({ replicaIdentity, missingColumns: missing }) => {
    replicaIdentityFull.set(replicaIdentity === 'full' ? 1 : 0);
    missingColumns.set(missing.length);
  });
  events.on('redis-eviction', ({ policy, evictedKeys: count }) => {
    evictionPolicy.reset();
    evictionPolicy.set({ policy }, 1);
    evictedKeys.set(count);
  });
  events.on('resync-finished', ({ rowsWritten }) => resyncRows.inc(rowsWritten));
  events.on('truncated', () => truncates.inc());
  events.on('backpressure', ({ paused }) => backpressure.set(paused ? 1 : 0));
  redisClient.on('error', () => redisErrors.inc());
  // A Cluster emits 'error' only when no node answers; each node's connection errors come as 'node error'.
  redisClient.on('node error', () => redisErrors.inc());
  monitor.onReading(({ slot, lagSeconds: seconds }) => {
    slotActive.set(slot.active ? 1 : 0);
    lagBytes(slot.lagBytes);
    retainedBytes(slot.retainedBytes);
    safeWalSize(slot.safeWalSizeBytes);
    lagSeconds(seconds);
  });
  return registry;
}
