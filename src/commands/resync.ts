import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar as ProgressBar } from 'cli-progress';
import type { Config } from '../config.js';
import { withDatabase } from '../db/database.js';
import { readSlot } from '../replication/slot.js';
import { connectRedis } from '../sink/redis-client.js';
import { RedisStore } from '../sink/redis-store.js';
import { makeSilentLogger } from '../logger.js';
import { describeFailing } from '../ops/failure-tracker.js';
import { readPublishedRoles, type PublishedRole } from '../ops/published-role.js';
import { EXIT_OK } from './exit-codes.js';
import { STATUS_EXIT } from './status.js';

const POLL_INTERVAL_MS = 200;
/** A consumer that stays away this long (slot inactive) is not coming back to finish the resync. */
const CONSUMER_GONE_MS = 10_000;
/**
 * How often the consumers' published state is read while one holds the slot: a consumer waiting for its
 * distribution service holds the slot, but it cannot rebuild before the service answers.
 */
const ROLES_CHECK_INTERVAL_MS = 5_000;

export type ResyncOutcome =
  | { state: 'rebuilt' }
  /** No consumer runs on the slot: the next `budget-cdc run` rebuilds Redis before it streams. */
  | { state: 'pending' }
  /** A consumer runs but its sessions keep failing: it rebuilds once a session gets far enough. */
  | { state: 'consumer-failing'; consumer: PublishedRole }
  /** A consumer runs but waits for its distribution service: it rebuilds once the service answers again. */
  | { state: 'distribution-unavailable'; consumer: PublishedRole };

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
    const sink = new RedisStore(redis, config.keyPrefix, config.slotName);
    await redis.del(sink.resyncProgressKey);
    await sink.requestRebuild({ cause: 'requested', detail: 'budget-cdc resync was run' });
    return await withDatabase(config.databaseUrl, async (db) => {
      // Waits while a consumer works at it: the slot streams, or a resync reports progress.
      let idleSince: number | undefined;
      let rolesCheckedAt = Date.now();
      for (;;) {
        if (await sink.hasCheckpoint()) return { state: 'rebuilt' } as const;
        const progress = await sink.readResyncProgress();
        if (progress !== undefined) onProgress(progress);
        if (progress === undefined && Date.now() - rolesCheckedAt > ROLES_CHECK_INTERVAL_MS) {
          rolesCheckedAt = Date.now();
          const waiting = (await readPublishedRoles(redis, config.slotName)).find((role) => role.distributionUnavailable !== undefined);
          if (waiting !== undefined) return { state: 'distribution-unavailable', consumer: waiting } as const;
        }
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

/** `budget-cdc resync`: asks for the rebuild, shows its progress; exits 7 (as status) when the consumer keeps failing. */
export async function resyncCommand(config: Config): Promise<number> {
  const terminal = process.stderr.isTTY === true;
  let bar: ProgressBar | undefined;
  let lastLine = 0;
  const outcome = await requestResync(config, ({ totalRows, rowsDone }) => {
    if (terminal) {
      if (bar === undefined) {
        bar = new ProgressBar({ format: 'resync [{bar}] {percentage}% | {value}/{total} rows | ETA {eta}s', stream: process.stderr });
        bar.start(totalRows, rowsDone);
      }
      bar.setTotal(totalRows);
      bar.update(rowsDone);
    } else if (Date.now() - lastLine > 5_000) {
      lastLine = Date.now();
      process.stderr.write(`resync: ${rowsDone}/${totalRows} rows\n`);
    }
  });
  bar?.stop();
  if (outcome.state === 'rebuilt') {
    process.stdout.write('resync finished: Redis holds the alive rows of the table, and the stream goes on from there\n');
  } else if (outcome.state === 'consumer-failing') {
    const { consumer } = outcome;
    process.stdout.write(
      `the consumer ${consumer.process} is failing (${describeFailing(consumer.failing!)}): the resync is requested and runs ` +
        'as soon as one of its sessions gets past that error; fix the error first ("budget-cdc status" follows it)\n',
    );
    return STATUS_EXIT.consumerFailing;
  } else if (outcome.state === 'distribution-unavailable') {
    const { consumer } = outcome;
    const { since, reason } = consumer.distributionUnavailable!;
    process.stdout.write(
      `the consumer ${consumer.process} waits for its distribution service, unavailable since ${since} (${reason}): the resync ` +
        'is requested and runs once the service answers again; fix the service first ("budget-cdc status" follows it)\n',
    );
    return STATUS_EXIT.consumerFailing;
  } else {
    process.stdout.write(
      `no consumer is running on slot ${config.slotName}: the checkpoint is removed, so the next "budget-cdc run" rebuilds Redis from the table before it streams\n`,
    );
  }
  return EXIT_OK;
}
