import type { RedisClient } from '../sink/redis-client.js';
import { publishedLagKey } from '../sink/internal-keys.js';
import type { SlotReading } from './slot-monitor.js';

/** A running consumer's lag reading expires this long after it was written, so `status` never shows a stale one. */
const PUBLISHED_LAG_TTL_MS = 10_000;

/** What a running consumer measured, for `budget-cdc status` in another process. */
export interface PublishedLag {
  lagSeconds: number;
  /** When it was measured (ISO). */
  at: string;
}

/** Writes the reading (only its lag in seconds: the bytes are read from PostgreSQL by whoever asks). */
export async function publishLag(redis: RedisClient, slotName: string, reading: SlotReading): Promise<void> {
  if (reading.lagSeconds === undefined) return;
  const value: PublishedLag = { lagSeconds: reading.lagSeconds, at: new Date(reading.atMs).toISOString() };
  const reply = await redis.set(publishedLagKey(slotName), JSON.stringify(value), 'PX', PUBLISHED_LAG_TTL_MS);
  if (reply !== 'OK') throw new Error(`redis SET ${publishedLagKey(slotName)} answered ${String(reply)}`);
}

/** The lag a running consumer published in the last 10 s, or undefined when none runs (or Redis was down). */
export async function readPublishedLag(redis: RedisClient, slotName: string): Promise<PublishedLag | undefined> {
  const text = await redis.get(publishedLagKey(slotName));
  if (text === null) return undefined;
  const value = JSON.parse(text) as Partial<PublishedLag>;
  if (typeof value.lagSeconds !== 'number' || typeof value.at !== 'string') {
    throw new Error(`${publishedLagKey(slotName)} holds ${text}, not a lag reading`);
  }
  return { lagSeconds: value.lagSeconds, at: value.at };
}
