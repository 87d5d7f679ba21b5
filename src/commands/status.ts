import { EVEN_SPLIT } from '../budget/budget-strategy.js';
import { redact, type Config, type HealthConfig } from '../config.js';
import { strategyName } from '../distribution/service-distribution.js';
import { formatStatus } from './status-text.js';
import { checkConnection } from '../db/check-database.js';
import { withDatabase } from '../db/database.js';
import { contractProblems, readTableContract, type TableContract } from '../db/table-contract.js';
import { formatLsn } from '../lsn.js';
import { deadLetterKey } from '../sink/internal-keys.js';
import type { RebuildHistory } from '../sink/rebuild-record.js';
import { connectRedis, type RedisClient } from '../sink/redis-client.js';
import { evictionWarning, readEvictionState, SAFE_EVICTION_POLICY, type EvictionState } from '../sink/redis-eviction.js';
import { RedisStore } from '../sink/redis-store.js';
import { describeRedisTarget, isClusterTarget } from '../sink/redis-target.js';
import { makeSilentLogger } from '../logger.js';
import { readPublishedLag } from '../ops/published-lag.js';
import { describeDistributionUnavailable } from '../ops/distribution-availability.js';
import { describeFailing } from '../ops/failure-tracker.js';
import { readPublishedRoles, type PublishedRole } from '../ops/published-role.js';
import { readSlotHealth } from '../ops/slot-health.js';

/** Exit codes of `budget-cdc status`, for cron jobs and monitors. */
export const STATUS_EXIT = {
  /** The slot exists, its lag is under both thresholds, Redis answers. */
  healthy: 0,
  /** PostgreSQL or Redis does not answer. */
  unreachable: 1,
  /** Lag over --max-lag-bytes or --max-lag-seconds, or the slot's WAL is at risk (wal_status unreserved). */
  lagging: 3,
  /** The slot does not exist, or lost WAL it needed (wal_status lost): Redis must be rebuilt (run does it). */
  slotLost: 4,
  /** Redis may delete job keys before their expiry: its maxmemory-policy is not noeviction. */
  evictionPossible: 5,
  /**
   * The jobs table breaks the contract: a column renamed or dropped, REPLICA IDENTITY not FULL, or jobs not in
   * the publication. Changes are set aside or keys go stale until it is repaired.
   */
  tableContract: 6,
  /**
   * A running consumer's sessions keep failing (its last error is shown), whatever the lag; or its distribution
   * service fails as a whole (its batches wait and hold their acknowledgement).
   */
  consumerFailing: 7,
} as const;

/** What `budget-cdc status` reports; the --json output is this object. */
export interface StatusReport {
  database: { url: string };
  /** The live state of the jobs table's contract; null when there is no jobs table ("budget-cdc migrate" creates it). */
  table: TableContract | null;
  slot: {
    name: string;
    exists: boolean;
    active: boolean;
    confirmedLsn: string | null;
    /** Bytes of WAL written since the last position acknowledged by the consumer. */
    lagBytes: number | null;
    /** Seconds since PostgreSQL wrote the oldest WAL not yet acknowledged, as measured by the running consumer; null when none runs. */
    lagSeconds: number | null;
    /** Bytes of WAL PostgreSQL keeps for the slot. */
    retainedBytes: number | null;
    /** reserved, extended, unreserved or lost (max_slot_wal_keep_size). */
    walStatus: string | null;
    /** Bytes of WAL that can still be written before the slot is in danger; null when max_slot_wal_keep_size is unlimited. */
    safeWalSizeBytes: number | null;
  };
  redis: {
    url: string;
    reachable: boolean;
    error: string | null;
    /** The checkpoint Redis holds for the key prefix ("16/B374D848#12"), or null (none yet, or lost: the consumer resyncs). */
    checkpoint: string | null;
    /** Entries in the dead-letter list of the slot. */
    deadLetters: number | null;
    /** maxmemory-policy, and the keys Redis evicted since it started; null when Redis does not answer. */
    eviction: EvictionState | null;
    /** Rebuilds of Redis from the table by cause, and the last one; null when Redis does not answer. */
    rebuilds: RebuildHistory | null;
  };
  /** The consumers of the slot that published their role in the last 10 s (active first, then standbys). */
  consumers: PublishedRole[];
  /**
   * The budget rule (`even`, or a distribution service's URL without its password). A consumer set to another rule
   * than `recorded` refuses to start until "budget-cdc resync" asks for a rebuild.
   */
  budgetRule: {
    /**
     * The rule the keys in Redis were built with, as the last rebuild recorded it (`even` when it predates the
     * setting); null when Redis does not answer, or holds no checkpoint (the next rebuild uses the consumer's rule).
     */
    recorded: string | null;
    /** This command's own --distribution / BUDGET_CDC_DISTRIBUTION. */
    configured: string;
  };
  health: {
    exitCode: number;
    /** Why the exit code is not 0; empty when healthy. */
    problems: string[];
    maxLagBytes: number;
    maxLagSeconds: number;
  };
}

/** The worst problem decides the exit code: unreachable, then a lost slot, then lag. */
const SEVERITY: number[] = [
  STATUS_EXIT.healthy,
  STATUS_EXIT.lagging,
  STATUS_EXIT.evictionPossible,
  STATUS_EXIT.tableContract,
  STATUS_EXIT.consumerFailing,
  STATUS_EXIT.slotLost,
  STATUS_EXIT.unreachable,
];
const REDIS_PROBE_TIMEOUT_MS = 2_000;

/** Reads the slot's state from PostgreSQL and probes Redis. PostgreSQL must be reachable (else ConnectionError); Redis may not be. */
export async function readStatus(config: Config, thresholds: HealthConfig): Promise<StatusReport> {
  const { slot, table } = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    return { slot: await readSlotHealth(db, config.slotName), table: (await readTableContract(db, config.publicationName)) ?? null };
  });
  const redis = await probeRedis(config);
  const slotReport: StatusReport['slot'] = {
    name: config.slotName,
    exists: slot.exists,
    active: slot.active,
    confirmedLsn: slot.confirmedLsn === undefined ? null : formatLsn(slot.confirmedLsn),
    lagBytes: slot.lagBytes === undefined ? null : Number(slot.lagBytes),
    lagSeconds: redis.lagSeconds,
    retainedBytes: slot.retainedBytes === undefined ? null : Number(slot.retainedBytes),
    walStatus: slot.walStatus,
    safeWalSizeBytes: slot.safeWalSizeBytes === undefined ? null : Number(slot.safeWalSizeBytes),
  };
  const redisReport: StatusReport['redis'] = {
    url: redis.url,
    reachable: redis.reachable,
    error: redis.error,
    checkpoint: redis.checkpoint,
    deadLetters: redis.deadLetters,
    rebuilds: redis.rebuilds,
    eviction: redis.eviction,
  };
  const report: Omit<StatusReport, 'health'> = {
    database: { url: redact(config.databaseUrl) },
    table,
    slot: slotReport,
    redis: redisReport,
    consumers: redis.consumers,
    budgetRule: {
      recorded: redis.reachable && redis.checkpoint !== null ? (redis.rebuilds?.distribution ?? EVEN_SPLIT.name) : null,
      configured: strategyName(config.distribution),
    },
  };
  return { ...report, health: judgeStatus(report, config.publicationName, thresholds) };
}

/** The exit code and problems of a report: the worst problem decides the code (SEVERITY). */
export function judgeStatus(
  report: Omit<StatusReport, 'health'>,
  publicationName: string,
  thresholds: HealthConfig,
): StatusReport['health'] {
  const { slot, redis } = report;
  const problems: string[] = [];
  let exitCode: number = STATUS_EXIT.healthy;
  const raise = (code: number, problem: string): void => {
    problems.push(problem);
    if (SEVERITY.indexOf(code) > SEVERITY.indexOf(exitCode)) exitCode = code;
  };
  if (!redis.reachable) raise(STATUS_EXIT.unreachable, `Redis does not answer: ${redis.error}`);
  if (redis.eviction !== null && redis.eviction.policy !== SAFE_EVICTION_POLICY) {
    raise(STATUS_EXIT.evictionPossible, `${evictionWarning(redis.eviction.policy)} (evicted keys so far: ${redis.eviction.evictedKeys})`);
  }
  if (report.table === null) raise(STATUS_EXIT.tableContract, 'there is no jobs table: run "budget-cdc migrate"');
  else for (const problem of contractProblems(report.table, publicationName)) raise(STATUS_EXIT.tableContract, problem);
  for (const consumer of report.consumers) {
    if (consumer.failing !== undefined)
      raise(STATUS_EXIT.consumerFailing, `consumer ${consumer.process} ${describeFailing(consumer.failing)}`);
    // The same code as failing sessions, not a new one: the consumer runs but cannot make progress (its batches
    // are retried, the slot keeps the WAL), whatever the lag says yet, and the remedy is in the consumer's
    // dependencies. Monitors that already page on 7 page on this too.
    if (consumer.distributionUnavailable !== undefined) {
      raise(
        STATUS_EXIT.consumerFailing,
        `consumer ${consumer.process}: ${describeDistributionUnavailable(consumer.distributionUnavailable)}`,
      );
    }
  }
  if (!slot.exists)
    raise(STATUS_EXIT.slotLost, `slot ${slot.name} does not exist: "budget-cdc run" creates it and loads Redis from the table`);
  else if (slot.walStatus === 'lost') {
    raise(STATUS_EXIT.slotLost, `slot ${slot.name} lost WAL it needed (wal_status lost): "budget-cdc run" recreates it and resyncs Redis`);
  } else if (slot.walStatus === 'unreserved') {
    raise(
      STATUS_EXIT.lagging,
      `slot ${slot.name} holds more WAL than max_wal_size (wal_status unreserved): it will be lost unless the consumer catches up`,
    );
  }
  if (slot.lagBytes !== null && slot.lagBytes > thresholds.maxLagBytes) {
    raise(STATUS_EXIT.lagging, `lag ${slot.lagBytes} bytes is over --max-lag-bytes ${thresholds.maxLagBytes}`);
  }
  if (slot.lagSeconds !== null && slot.lagSeconds > thresholds.maxLagSeconds) {
    raise(STATUS_EXIT.lagging, `lag ${slot.lagSeconds.toFixed(1)} s is over --max-lag-seconds ${thresholds.maxLagSeconds}`);
  }
  return { exitCode, problems, maxLagBytes: thresholds.maxLagBytes, maxLagSeconds: thresholds.maxLagSeconds };
}

type RedisProbe = StatusReport['redis'] & { lagSeconds: number | null; consumers: PublishedRole[] };

async function probeRedis(config: Config): Promise<RedisProbe> {
  const url = config.redisSentinelMaster === undefined && !isClusterTarget(config) ? redact(config.redisUrl) : describeRedisTarget(config);
  let redis: RedisClient | undefined;
  const unreachable = (error: string): RedisProbe => ({
    url,
    reachable: false,
    error,
    checkpoint: null,
    deadLetters: null,
    rebuilds: null,
    eviction: null,
    lagSeconds: null,
    consumers: [],
  });
  try {
    return await Promise.race([
      (async () => {
        redis = await connectRedis(config, makeSilentLogger());
        const pong = await redis.ping();
        if (pong !== 'PONG') return unreachable(`unexpected PING reply ${pong}`);
        const store = new RedisStore(redis, config.keyPrefix, config.slotName);
        const checkpoint = await store.readCheckpointText();
        const deadLetters = await redis.llen(deadLetterKey(config.slotName));
        if (typeof deadLetters !== 'number') throw new Error(`LLEN ${deadLetterKey(config.slotName)} answered ${String(deadLetters)}`);
        const lag = await readPublishedLag(redis, config.slotName);
        const rebuilds = await store.readRebuildHistory();
        const consumers = await readPublishedRoles(redis, config.slotName);
        const eviction = await readEvictionState(redis);
        return {
          url,
          reachable: true,
          error: null,
          checkpoint,
          deadLetters,
          rebuilds,
          eviction,
          lagSeconds: lag?.lagSeconds ?? null,
          consumers,
        };
      })(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${REDIS_PROBE_TIMEOUT_MS / 1000} s`)), REDIS_PROBE_TIMEOUT_MS).unref(),
      ),
    ]);
  } catch (error) {
    return unreachable(redactMessage(error instanceof Error ? error.message : String(error), config.redisUrl));
  } finally {
    redis?.disconnect();
  }
}

/** An error message that might quote the URL, with its password hidden. */
function redactMessage(message: string, url: string): string {
  const password = passwordOf(url);
  return password === '' ? message : message.split(password).join('***');
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** `budget-cdc status [--json]`: prints the report; its exit code is the health's (STATUS_EXIT). */
export async function statusCommand(config: Config, thresholds: HealthConfig, json: boolean): Promise<number> {
  const report = await readStatus(config, thresholds);
  process.stdout.write(json ? JSON.stringify(report) + '\n' : formatStatus(report) + '\n');
  return report.health.exitCode;
}
