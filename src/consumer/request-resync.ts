import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { withDatabase } from '../db/database.js';
import { readSlot } from '../replication/slot.js';
import { connectRedis } from '../sink/redis-client.js';
import { RedisSink } from '../sink/redis-sink.js';
import { makeSilentLogger } from '../ops/logger.js';

const POLL_INTERVAL_MS = 200;
/** A consumer that stays away this long (slot inactive) is not coming back to finish the resync. */
const CONSUMER_GONE_MS = 10_000;

export type ResyncOutcome =
  | { state: 'rebuilt' }
  /** No consumer runs on the slot: the next `budget-cdc run` rebuilds Redis before it streams. */
  | { state: 'pending' };

/**
 * Asks for Redis to be rebuilt from the table by removing the checkpoint. The consumer, the only writer,
 * notices within a second, pauses the stream, writes the alive rows of a consistent snapshot, removes stale
 * keys, sets the checkpoint at the snapshot's position and streams on from there, so no snapshot row ever
 * overwrites a newer streamed change. Waits for that while a consumer runs, reporting its progress.
 */
export async function requestResync(
  config: Config,
  onProgress: (progress: { totalRows: number; rowsDone: number }) => void,
): Promise<ResyncOutcome> {
  const redis = await connectRedis(config, makeSilentLogger());
  try {
    const sink = new RedisSink(redis, config.keyPrefix, config.slotName);
    await redis.del(sink.resyncProgressKey);
    await sink.requestRebuild({ cause: 'requested', detail: 'budget-cdc resync was run' });
    return await withDatabase(config.databaseUrl, async (db) => {
      let inactiveSince: number | undefined;
      for (;;) {
        if (await sink.hasCheckpoint()) return { state: 'rebuilt' } as const;
        const progress = await sink.readResyncProgress();
        if (progress !== undefined) onProgress(progress);
        const slot = await readSlot(db, config.slotName);
        if (slot?.active === true) inactiveSince = undefined;
        else inactiveSince ??= Date.now();
        if (inactiveSince !== undefined && Date.now() - inactiveSince > CONSUMER_GONE_MS) return { state: 'pending' } as const;
        await sleep(POLL_INTERVAL_MS);
      }
    });
  } finally {
    redis.disconnect();
  }
}
