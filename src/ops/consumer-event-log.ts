import type { ConsumerEvents } from '../consumer/consumer-events.js';
import { formatLsn } from '../replication/lsn.js';
import type { Logger } from './logger.js';

/**
 * Logs what the session does not log itself: a line per batch and acknowledgement at debug, TRUNCATE at
 * info. Sessions, resyncs, failures and dead letters are logged where they happen, with their context.
 */
export function logConsumerEvents(events: ConsumerEvents, logger: Logger): void {
  events.on('batch-written', ({ writes, durationMs }) =>
    logger.debug({ writes, durationMs: Math.round(durationMs * 10) / 10 }, 'batch written'),
  );
  events.on('acknowledged', ({ lsn }) => logger.debug({ lsn: formatLsn(lsn) }, 'acknowledged'));
  events.on('truncated', ({ deletedKeys }) => logger.info({ deletedKeys }, 'TRUNCATE applied: every key under the prefix removed'));
  events.on('backpressure', ({ paused }) =>
    logger.debug({ paused }, paused ? 'reading paused: Redis writes are behind' : 'reading resumed'),
  );
}
