import { describeDistributionUnavailable } from '../ops/distribution-availability.js';
import { describeFailing } from '../ops/failure-tracker.js';
import type { PublishedRole } from '../ops/published-role.js';
import { formatLsn } from '../lsn.js';
import { parseCheckpoint } from '../sink/checkpoint.js';
import { REBUILD_CAUSES, type RebuildCause, type RebuildHistory } from '../sink/rebuild-record.js';
import type { StatusReport } from './status.js';

// The human-readable form of `budget-cdc status`; --json prints the StatusReport itself.

/** "active budget-cdc host-a pid 17", with why it fails and whether its distribution service answers. */
export function formatConsumer(consumer: PublishedRole): string {
  const problems: string[] = [];
  if (consumer.failing !== undefined) problems.push(`FAILING: ${describeFailing(consumer.failing)}`);
  if (consumer.distributionUnavailable !== undefined) problems.push(describeDistributionUnavailable(consumer.distributionUnavailable));
  return `${consumer.role} ${consumer.process}${problems.length === 0 ? '' : ` (${problems.join('; ')})`}`;
}

/** The human-readable form of the report. */
export function formatStatus(report: StatusReport): string {
  const { slot, redis, health } = report;
  const lines = [`postgres ${report.database.url}`];
  if (slot.exists) {
    lines.push(
      `slot ${slot.name}: ${slot.active ? 'active' : 'inactive (no consumer streams from it)'}, confirmed ${slot.confirmedLsn}, wal_status ${slot.walStatus}`,
      `  lag ${formatBytes(slot.lagBytes)}, ${slot.lagSeconds === null ? 'seconds unknown (measured by a running consumer)' : `${slot.lagSeconds.toFixed(1)} s`}` +
        `; retained WAL ${formatBytes(slot.retainedBytes)}; safe_wal_size ${slot.safeWalSizeBytes === null ? 'unlimited' : formatBytes(slot.safeWalSizeBytes)}`,
    );
  } else {
    lines.push(`slot ${slot.name}: does not exist (created by "budget-cdc run")`);
  }
  lines.push(
    redis.reachable
      ? `redis ${redis.url}: reachable; dead letters ${redis.deadLetters}` +
          (redis.eviction === null ? '' : `; maxmemory-policy ${redis.eviction.policy}, evicted keys ${redis.eviction.evictedKeys}`)
      : `redis ${redis.url}: unreachable (${redis.error})`,
  );
  if (redis.reachable) lines.push(`  ${describeCheckpoint(redis.checkpoint)}`);
  if (redis.reachable) {
    lines.push(`consumers: ${report.consumers.length === 0 ? 'none running' : report.consumers.map(formatConsumer).join('; ')}`);
  }
  if ((redis.deadLetters ?? 0) > 0) {
    lines.push(
      '  rows set aside: "budget-cdc dead-letters" lists them with their reason; fix the cause (the row, or the table), then "budget-cdc resync"',
    );
  }
  if (redis.rebuilds !== null) lines.push(formatRebuilds(redis.rebuilds));
  if (redis.reachable) lines.push(formatBudgetRule(report.budgetRule));
  lines.push(health.exitCode === 0 ? 'healthy' : `unhealthy (exit ${health.exitCode}): ${health.problems.join('; ')}`);
  return lines.join('\n');
}

/**
 * "checkpoint: last change in Redis 0/6C41D98#-1 (…)": the stored text is kept whole (it is what logs and --json
 * show, and what an operator searches for), followed by what its parts mean.
 */
export function describeCheckpoint(text: string | null): string {
  if (text === null) return 'checkpoint: none (the consumer loads Redis from the table, then streams)';
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(text);
  } catch {
    // A cluster's summary of its slots' checkpoints, or a form this version does not know: shown as it is.
    return `checkpoint: ${text}`;
  }
  const commit = formatLsn(checkpoint.commitLsn);
  const position =
    checkpoint.index === -1
      ? `#-1: Redis holds every transaction committed before ${commit}, none of that one`
      : `#${checkpoint.index}: Redis holds every transaction committed before ${commit} and changes 0 to ${checkpoint.index} of that one`;
  const acknowledged = checkpoint.ackLsn === undefined ? '' : `, acknowledged to PostgreSQL up to ${formatLsn(checkpoint.ackLsn)} at most`;
  const writer = checkpoint.writer === undefined ? '' : `, written by consumer session ${checkpoint.writer}`;
  return `checkpoint: last change in Redis ${commit} (${position})${acknowledged}${writer}`;
}

const REBUILD_CAUSE_TEXT: Record<RebuildCause, string> = {
  'new-slot': 'new slot',
  'slot-lost': 'slot lost',
  'redis-empty': 'Redis lost everything',
  'redis-went-back': 'Redis went back in time',
  requested: 'requested',
};

/** "rebuilds: 1 new slot, 2 Redis went back in time; last …" */
function formatRebuilds(history: RebuildHistory): string {
  const counts = REBUILD_CAUSES.filter((cause) => (history.counts[cause] ?? 0) > 0).map(
    (cause) => `${history.counts[cause]} ${REBUILD_CAUSE_TEXT[cause]}`,
  );
  if (counts.length === 0) return 'rebuilds from the table: none';
  const last = history.last;
  return `rebuilds from the table: ${counts.join(', ')}${last === undefined ? '' : `; last ${last.at} (${REBUILD_CAUSE_TEXT[last.cause]}): ${last.detail}`}`;
}

/**
 * "budget rule: even (recorded by the last rebuild; changing it needs "budget-cdc resync")", and whether this
 * command's own setting differs: a consumer started with it would refuse to start.
 */
export function formatBudgetRule(rule: StatusReport['budgetRule']): string {
  if (rule.recorded === null) {
    return `budget rule: none in force (no checkpoint): the next rebuild uses the consumer's --distribution setting (here ${rule.configured}) and records it`;
  }
  if (rule.recorded === rule.configured)
    return `budget rule: ${rule.recorded} (recorded by the last rebuild; changing it needs "budget-cdc resync")`;
  return (
    `budget rule: ${rule.recorded} (recorded by the last rebuild), but this setting is ${rule.configured} ` +
    '(--distribution / BUDGET_CDC_DISTRIBUTION): a consumer with it refuses to start until "budget-cdc resync" asks for a rebuild'
  );
}

/** "512 bytes", or "3.2 MiB (3355443 bytes)" from 1 MiB on. */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'unknown';
  const MIB = 1024 * 1024;
  return bytes < MIB ? `${bytes} bytes` : `${(bytes / MIB).toFixed(1)} MiB (${bytes} bytes)`;
}
