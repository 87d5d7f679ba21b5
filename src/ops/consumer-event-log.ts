import type { ConsumerEvents } from '../consumer/consumer-events.js';
import { formatLsn } from '../lsn.js';
import type { Logger } from '../logger.js';

/**
 * Logs what the session does not log itself: a line per batch and acknowledgement at debug, TRUNCATE at
 * info, a broken table contract at warn (at start, and whenever it changes). Sessions, resyncs, failures
 * and dead letters are logged where they happen, with their context.
 */
export function logConsumerEvents(events: ConsumerEvents, logger: Logger): void {
  events.on('batch-written', ({ writes, durationMs }) =>
    logger.debug({ writes, durationMs: Math.round(durationMs * 10) / 10 }, 'batch written'),
  );
  events.on('acknowledged', ({ lsn }) => logger.debug({ lsn: formatLsn(lsn) }, 'acknowledged'));
  events.on('truncated', ({ deletedKeys }) => logger.info({ deletedKeys }, 'TRUNCATE applied: every key under the prefix removed'));
  let lastProblems = '';
  events.on('table-described', ({ source, replicaIdentity, missingColumns, problems }) => {
    // The stream describes the table as of the WAL it decodes, which may be older than the table now.
    const text = problems.join('; ');
    if (text === lastProblems) return;
    if (problems.length > 0) logger.warn({ source, replicaIdentity, missingColumns }, `the jobs table breaks the contract: ${text}`);
    else if (lastProblems !== '') logger.info({ source }, 'the jobs table meets the contract again');
    lastProblems = text;
  });
  events.on('backpressure', ({ paused }) =>
    logger.debug({ paused }, paused ? 'reading paused: Redis writes are behind' : 'reading resumed'),
  );
}
