import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import { readSlotHealth, type SlotHealth } from './slot-health.js';
import { WalAgeEstimator } from './wal-age-estimator.js';

/** How often the slot is read. */
export const SLOT_MONITOR_INTERVAL_MS = 1_000;

/** The last reading of the slot, with the lag in seconds estimated from the readings so far. */
export interface SlotReading {
  slot: SlotHealth;
  /** Seconds since PostgreSQL wrote the oldest WAL the slot has not confirmed (see WalAgeEstimator); undefined without a slot. */
  lagSeconds: number | undefined;
  atMs: number;
}

export interface SlotMonitor {
  /** The newest reading, or undefined before the first one succeeded. */
  latest(): SlotReading | undefined;
  /** Reads now, e.g. when a session starts, rather than up to a second later. */
  refresh(): void;
  /** Called after each successful reading. */
  onReading(listener: (reading: SlotReading) => void): void;
  stop(): void;
}

/**
 * Reads the slot's state every second for the health endpoint, the metrics and `status`. A reading that fails
 * (PostgreSQL restarting) leaves the previous one in place, which then grows old; the endpoint judges its age.
 */
export function startSlotMonitor(
  db: Kysely<Database>,
  slotName: string,
  logger: Logger,
  intervalMs = SLOT_MONITOR_INTERVAL_MS,
): SlotMonitor {
  const estimator = new WalAgeEstimator();
  const listeners: ((reading: SlotReading) => void)[] = [];
  let latest: SlotReading | undefined;
  let reading = false;
  let lastError = '';
  const read = async (): Promise<void> => {
    if (reading) return; // a slow server: never pile up queries
    reading = true;
    try {
      const slot = await readSlotHealth(db, slotName);
      const atMs = Date.now();
      estimator.record(atMs, slot.walLsn);
      const lagSeconds = slot.confirmedLsn === undefined ? undefined : estimator.lagSeconds(atMs, slot.confirmedLsn);
      latest = { slot, lagSeconds, atMs };
      lastError = '';
      for (const listener of listeners) listener(latest);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastError) logger.debug({ err: message }, 'cannot read the slot state');
      lastError = message;
    } finally {
      reading = false;
    }
  };
  void read();
  const timer = setInterval(() => void read(), intervalMs);
  timer.unref();
  return {
    latest: () => latest,
    refresh: () => void read(),
    onReading: (listener) => void listeners.push(listener),
    stop: () => clearInterval(timer),
  };
}
