import { describe, expect, it } from 'vitest';
import { WalAgeEstimator } from '../../src/ops/wal-age-estimator.js';

describe('WalAgeEstimator', () => {
  it('is 0 while the slot confirms the newest WAL seen', () => {
    const estimator = new WalAgeEstimator();
    estimator.record(1_000, 100n);
    expect(estimator.lagSeconds(1_000, 100n)).toBe(0);
    estimator.record(2_000, 200n);
    expect(estimator.lagSeconds(2_500, 200n)).toBe(0);
  });

  it('is the age of the oldest sample beyond the confirmed position, and keeps growing while the slot is stuck', () => {
    const estimator = new WalAgeEstimator();
    estimator.record(1_000, 100n);
    estimator.record(2_000, 200n);
    estimator.record(3_000, 300n);
    expect(estimator.lagSeconds(3_000, 150n)).toBe(1); // WAL beyond 150 existed at 2 000 ms
    expect(estimator.lagSeconds(10_000, 150n)).toBe(8);
    expect(estimator.lagSeconds(10_000, 250n)).toBe(7);
    expect(estimator.lagSeconds(10_000, 300n)).toBe(0);
  });

  it('dates WAL by the first sample that saw it: a later sample at the same position changes nothing', () => {
    const estimator = new WalAgeEstimator();
    estimator.record(1_000, 100n);
    estimator.record(5_000, 100n);
    expect(estimator.lagSeconds(6_000, 50n)).toBe(5);
  });

  it('stays bounded over a long outage and still dates the oldest unconfirmed WAL', () => {
    const estimator = new WalAgeEstimator();
    for (let second = 0; second < 20_000; second++) estimator.record(second * 1_000, BigInt(second + 1) * 10n);
    const lag = estimator.lagSeconds(20_000_000, 5n);
    expect(lag).toBe(20_000);
  });
});
