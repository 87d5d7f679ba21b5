import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { withDatabase } from '../db/database.js';
import { readSlot } from '../replication/slot.js';
import { connectRedis } from '../sink/redis-client.js';
import { RedisSink } from '../sink/redis-sink.js';
import { makeSilentLogger } from '../logger.js';
import { readPublishedRoles, type PublishedRole } from '../ops/published-role.js';

const POLL_INTERVAL_MS = 200;
/** A consumer that stays away this long (slot inactive) is not coming back to finish the resync. */
const CONSUMER_GONE_MS = 10_000;

export type ResyncOutcome =
  | { state: 'rebuilt' }
  /** No consumer runs on the slot: the next `budget-cdc run` rebuilds Redis before it streams. */
  | { state: 'pending' }
  /** A consumer runs but its sessions keep failing: it rebuilds once a session gets far enough. */
  | { state: 'consumer-failing'; consumer: PublishedRole };

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
      // Waits while a consumer works at it: the slot streams, or a resync reports progress.
      let idleSince: number | undefined;
      for (;;) {
        if (await sink.hasCheckpoint()) return { state: 'rebuilt' } as const;
        const progress = await sink.readResyncProgress();
        if (progress !== undefined) onProgress(progress);
        const slot = await readSlot(db, config.slotName);
        if (slot?.active === true || progress !== undefined) idleSince = undefined;
        else idleSince ??= Date.now();
        if (idleSince !== undefined && Date.now() - idleSince > CONSUMER_GONE_MS) {
          // Between its failed sessions a consumer holds no slot, but it still publishes its state.
          const roles = await readPublishedRoles(redis, config.slotName);
          const failing = roles.find((role) => role.failing !== undefined);
          if (failing !== undefined) return { state: 'consumer-failing', consumer: failing } as const;
          if (roles.length === 0) return { state: 'pending' } as const;
          idleSince = undefined; // a consumer is there and not failing (a standby taking over): wait on
        }
        await sleep(POLL_INTERVAL_MS);
      }
    });
  } finally {
    redis.disconnect();
  }
}
