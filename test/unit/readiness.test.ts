import { describe, expect, it } from 'vitest';
import type { SlotHealth } from '../../src/ops/slot-health.js';
import { evaluateReadiness, READING_MAX_AGE_MS, type ConsumerHealth } from '../../src/ops/readiness.js';

const NOW = 1_000_000;
const THRESHOLDS = { maxLagBytes: 1_000, maxLagSeconds: 60 };

function slot(overrides: Partial<SlotHealth> = {}): SlotHealth {
  return {
    walLsn: 5_000n,
    exists: true,
    active: true,
    confirmedLsn: 4_900n,
    lagBytes: 100n,
    retainedBytes: 200n,
    walStatus: 'reserved',
    safeWalSizeBytes: undefined,
    ...overrides,
  };
}

function health(overrides: Partial<ConsumerHealth> = {}, slotOverrides: Partial<SlotHealth> = {}, lagSeconds = 1): ConsumerHealth {
  return {
    redisConnected: true,
    streaming: true,
    reading: { slot: slot(slotOverrides), lagSeconds, atMs: NOW - 500 },
    role: 'active',
    activeConsumer: undefined,
    replicasBehind: undefined,
    failing: undefined,
    distributionUnavailable: undefined,
    ...overrides,
  };
}

describe('evaluateReadiness', () => {
  it('is not ready while sessions keep failing, and says how often, since when and why', () => {
    const failing = { consecutiveFailures: 4, lastError: 'OOM command not allowed', since: '2026-12-01T01:00:00.000Z' };
    const readiness = evaluateReadiness(health({ failing }), THRESHOLDS, NOW);
    expect(readiness.ready).toBe(false);
    expect(readiness.reasons).toEqual(['the consumer failed 4 times in a row since 2026-12-01T01:00:00.000Z: OOM command not allowed']);
  });

  it('is ready when Redis is connected, a session streams, the slot is active and the lag is under both thresholds', () => {
    expect(evaluateReadiness(health(), THRESHOLDS, NOW)).toEqual({
      ready: true,
      reasons: [],
      role: 'active',
      slotActive: true,
      lagBytes: 100,
      lagSeconds: 1,
    });
  });

  it.each([
    ['Redis down', health({ redisConnected: false }), 'Redis is not connected'],
    ['no session', health({ streaming: false }), 'no replication session is streaming (starting, resyncing, or waiting to reconnect)'],
    ['inactive slot', health({}, { active: false }), 'the replication slot is not active'],
    ['no slot', health({}, { exists: false, active: false }), 'the replication slot does not exist'],
    ['lost slot', health({}, { walStatus: 'lost' }), 'the replication slot lost WAL it needed (wal_status lost)'],
    ['lag bytes', health({}, { lagBytes: 1_001n }), 'lag 1001 bytes is over --max-lag-bytes 1000'],
    ['lag seconds', health({}, {}, 61), 'lag 61.0 s is over --max-lag-seconds 60'],
    ['no reading', health({ reading: undefined }), 'the slot has not been read from PostgreSQL yet'],
    [
      'standby',
      health({ role: 'standby', streaming: false, activeConsumer: 'pid 42 (budget-cdc host-a pid 7)' }),
      'standby: another process consumes the slot (pid 42 (budget-cdc host-a pid 7)); this one takes over when it stops',
    ],
    [
      'distribution service unavailable',
      health({ distributionUnavailable: { since: '2026-12-01T01:00:00.000Z', reason: 'no answer within 10 s' } }),
      'distribution service unavailable since 2026-12-01T01:00:00.000Z: no answer within 10 s',
    ],
    [
      'replicas behind',
      health({ replicasBehind: { replicas: 0, required: 1 } }),
      'only 0 of 1 Redis replicas confirmed the last write (--redis-min-replicas): acknowledgements are held',
    ],
  ])('is not ready: %s', (_, state, reason) => {
    const readiness = evaluateReadiness(state, THRESHOLDS, NOW);
    expect(readiness.ready).toBe(false);
    expect(readiness.reasons).toEqual([reason]);
  });

  it('does not trust a reading older than 5 s: PostgreSQL stopped answering', () => {
    const stale = health();
    stale.reading!.atMs = NOW - READING_MAX_AGE_MS - 1_000;
    const readiness = evaluateReadiness(stale, THRESHOLDS, NOW);
    expect(readiness).toMatchObject({
      ready: false,
      reasons: ['the slot could not be read from PostgreSQL for 6 s'],
      lagBytes: null,
      slotActive: null,
    });
  });
});
