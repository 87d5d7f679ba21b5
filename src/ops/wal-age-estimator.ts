import type { Lsn } from '../lsn.js';

/** Samples kept; beyond this every other one is dropped, so memory stays bounded and precision degrades gently. */
const MAX_SAMPLES = 4096;

/**
 * Lag in seconds: how long ago PostgreSQL wrote the oldest WAL the slot has not confirmed. PostgreSQL keeps no
 * clock for WAL positions, so the monitor records (time, pg_current_wal_lsn()) samples and the lag is the age
 * of the oldest sample beyond the confirmed position. It is a lower bound, off by at most one sampling
 * interval, and unlike pg_stat_replication's flush_lag it keeps growing while the consumer is stuck.
 */
export class WalAgeEstimator {
  private samples: { atMs: number; walLsn: Lsn }[] = [];

  /** Records that the server's WAL ended at `walLsn` at `atMs`. */
  record(atMs: number, walLsn: Lsn): void {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && walLsn <= last.walLsn) return; // no new WAL: the older sample dates it better
    this.samples.push({ atMs, walLsn });
    if (this.samples.length > MAX_SAMPLES) this.samples = this.samples.filter((_, i) => i % 2 === 0 || i === this.samples.length - 1);
  }

  /** Seconds since the oldest WAL beyond `confirmedLsn` was written; 0 when the slot confirmed every sample. */
  lagSeconds(nowMs: number, confirmedLsn: Lsn): number {
    const firstUnconfirmed = this.samples.findIndex((sample) => sample.walLsn > confirmedLsn);
    if (firstUnconfirmed === -1) {
      this.samples = this.samples.slice(-1);
      return 0;
    }
    // Samples the slot has confirmed are no longer needed.
    this.samples = this.samples.slice(firstUnconfirmed);
    return Math.max(0, (nowMs - this.samples[0]!.atMs) / 1000);
  }
}
