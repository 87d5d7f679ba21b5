import { describeDistributionUnavailable, type DistributionUnavailable } from './distribution-availability.js';
import { describeFailing, type ConsumerFailing } from './failure-tracker.js';
import type { SlotReading } from './slot-monitor.js';

/** A consumer's state as the health endpoint sees it. */
export interface ConsumerHealth {
  /** The consumer's Redis connection is up. */
  redisConnected: boolean;
  /** A replication session streams (false while starting, resyncing or waiting to reconnect). */
  streaming: boolean;
  /** The slot monitor's newest reading. */
  reading: SlotReading | undefined;
  /** Active: this process consumes the slot; standby: another one does, and this one waits to take over. */
  role: ConsumerRole;
  /** The process holding the slot, while this one is a standby. */
  activeConsumer: string | undefined;
  /** Set while fewer replicas than --redis-min-replicas confirmed the last write: acknowledgements are held. */
  replicasBehind: { replicas: number; required: number } | undefined;
  /** Set while sessions keep failing (see FailureTracker). */
  failing: ConsumerFailing | undefined;
  /** Set while the distribution service (--distribution URL) fails as a whole: batches wait, acknowledgements are held. */
  distributionUnavailable: DistributionUnavailable | undefined;
}

export type ConsumerRole = 'starting' | 'active' | 'standby';

export interface LagThresholds {
  maxLagBytes: number;
  maxLagSeconds: number;
}

/** The answer of /readyz: ready, or the reasons it is not. */
export interface Readiness {
  ready: boolean;
  reasons: string[];
  role: ConsumerRole;
  slotActive: boolean | null;
  lagBytes: number | null;
  lagSeconds: number | null;
}

/** A slot reading older than this (PostgreSQL not answering) does not count. */
export const READING_MAX_AGE_MS = 5_000;

/**
 * Ready when Redis is connected, a session streams, the slot is active, its lag is under both thresholds, and the
 * distribution service (if one is used) answers.
 */
export function evaluateReadiness(health: ConsumerHealth, thresholds: LagThresholds, nowMs: number): Readiness {
  const reasons: string[] = [];
  if (!health.redisConnected) reasons.push('Redis is not connected');
  if (health.role === 'standby') {
    reasons.push(
      `standby: another process consumes the slot${health.activeConsumer === undefined ? '' : ` (${health.activeConsumer})`}; this one takes over when it stops`,
    );
  } else if (!health.streaming) {
    reasons.push('no replication session is streaming (starting, resyncing, or waiting to reconnect)');
  }
  if (health.failing !== undefined) reasons.push(`the consumer ${describeFailing(health.failing)}`);
  if (health.distributionUnavailable !== undefined) reasons.push(describeDistributionUnavailable(health.distributionUnavailable));
  if (health.replicasBehind !== undefined) {
    const { replicas, required } = health.replicasBehind;
    reasons.push(
      `only ${replicas} of ${required} Redis replicas confirmed the last write (--redis-min-replicas): acknowledgements are held`,
    );
  }
  const reading = health.reading;
  const fresh = reading !== undefined && nowMs - reading.atMs <= READING_MAX_AGE_MS;
  if (!fresh) {
    reasons.push(
      reading === undefined
        ? 'the slot has not been read from PostgreSQL yet'
        : `the slot could not be read from PostgreSQL for ${Math.round((nowMs - reading.atMs) / 1000)} s`,
    );
  }
  const slot = fresh ? reading.slot : undefined;
  if (slot !== undefined) {
    if (!slot.exists) reasons.push('the replication slot does not exist');
    else if (!slot.active) reasons.push('the replication slot is not active');
    if (slot.walStatus === 'lost') reasons.push('the replication slot lost WAL it needed (wal_status lost)');
    if (slot.lagBytes !== undefined && slot.lagBytes > BigInt(thresholds.maxLagBytes)) {
      reasons.push(`lag ${slot.lagBytes} bytes is over --max-lag-bytes ${thresholds.maxLagBytes}`);
    }
  }
  const lagSeconds = fresh ? reading.lagSeconds : undefined;
  if (lagSeconds !== undefined && lagSeconds > thresholds.maxLagSeconds) {
    reasons.push(`lag ${lagSeconds.toFixed(1)} s is over --max-lag-seconds ${thresholds.maxLagSeconds}`);
  }
  return {
    ready: reasons.length === 0,
    reasons,
    role: health.role,
    slotActive: slot === undefined ? null : slot.active,
    lagBytes: slot?.lagBytes === undefined ? null : Number(slot.lagBytes),
    lagSeconds: lagSeconds ?? null,
  };
}
