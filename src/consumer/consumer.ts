import { redact, type Config } from '../config.js';
import { makeBudgetStrategy } from '../distribution/service-distribution.js';
import { checkConnection, checkReplicationReady } from '../db/check-database.js';
import { makeDatabase, type Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Kysely } from 'kysely';
import { Cluster } from 'ioredis';
import { PermanentError } from '../errors.js';
import { ClusterSink } from '../sink/cluster-sink.js';
import { connectRedis, type RedisClient } from '../sink/redis-client.js';
import { RedisSink } from '../sink/redis-sink.js';
import { makeConsumerEvents, SESSION_PROGRESS_MS, type ConsumerEvents } from './consumer-events.js';
import { ConsumerSession } from './consumer-session.js';
import { RebuildRequestedError, StandbyError } from './session-errors.js';
import { permanentErrorMessage } from './error-kind.js';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;
/** How often a standby tries to take the slot over: how soon it notices that the active process is gone. */
const STANDBY_POLL_MS = 1_000;
/** How long one WAIT for replicas blocks the writer connection before the consumer asks again. */
const REDIS_WAIT_TIMEOUT_MS = 1_000;

/** The consumer's connections, lent to what observes it (slot monitor, published status); closed by the consumer. */
export interface ConsumerConnections {
  db: Kysely<Database>;
  redis: RedisClient;
}

/** What watches a consumer from outside: started with its connections, stopped before they close. */
export interface ConsumerWatcher {
  stop(): void;
}

export interface Consumer {
  readonly events: ConsumerEvents;
  /**
   * Resolves when the consumer has stopped (after stop()). Rejects with a PermanentError on an error that
   * retrying cannot cure (its message says what to fix), never on a lost connection.
   */
  readonly done: Promise<void>;
  /** Finishes and acknowledges the batch in flight, then ends the stream and closes connections. */
  stop(): Promise<void>;
}

/**
 * Checks the setup once (a wrong URL or a missing migration is reported at once, not retried), then
 * streams in sessions: when one fails (PostgreSQL or Redis restarted, network dropped) the next starts
 * after a jittered, growing delay and resumes from the slot's confirmed position.
 */
export async function startConsumer(
  config: Config,
  logger: Logger,
  events: ConsumerEvents = makeConsumerEvents(),
  watch: (connections: ConsumerConnections) => ConsumerWatcher = () => ({ stop: () => undefined }),
): Promise<Consumer> {
  const db = makeDatabase(config.databaseUrl, 'budget-cdc run');
  let redis;
  try {
    await checkConnection(db, config.databaseUrl);
    await checkReplicationReady(db, config.publicationName);
    redis = await connectRedis(config, logger.child({ component: 'redis' }));
  } catch (error) {
    await db.destroy();
    throw error;
  }

  const sink =
    redis instanceof Cluster
      ? new ClusterSink(redis, config.keyPrefix, config.slotName, {
          seeds: config.redisClusterNodes.map(({ host, port }) => `${host}:${port}`),
          minReplicas: config.redisMinReplicas,
          waitTimeoutMs: REDIS_WAIT_TIMEOUT_MS,
        })
      : new RedisSink(redis, config.keyPrefix, config.slotName, {
          target: config,
          minReplicas: config.redisMinReplicas,
          waitTimeoutMs: REDIS_WAIT_TIMEOUT_MS,
        });
  const sessionLogger = logger.child({ component: 'consumer', slot: config.slotName });
  const distributionLogger = logger.child({ component: 'distribution' });
  const strategy = makeBudgetStrategy(
    config.distribution,
    {
      unavailable: (since, reason) => {
        distributionLogger.error(
          { url: config.distribution.kind === 'service' ? redact(config.distribution.url) : undefined, reason },
          'distribution service unavailable: its batches are retried and hold their acknowledgement',
        );
        events.emit('distribution-availability', { available: false, since, reason });
      },
      available: () => {
        distributionLogger.info('distribution service answers again');
        events.emit('distribution-availability', { available: true });
      },
      requested: (request) => events.emit('distribution-request', request),
    },
    distributionLogger,
  );
  const watcher = watch({ db, redis });
  let stopping = false;
  let session: ConsumerSession | undefined;
  let wakeUp: (() => void) | undefined;
  let acknowledgedSinceFailure = true;
  events.on('acknowledged', () => {
    acknowledgedSinceFailure = true;
  });
  let role: 'active' | 'standby' | undefined;
  let activeConsumer: string | undefined;
  events.on('role', (event) => {
    if (event.role === 'active' && role === 'standby') sessionLogger.info('took the slot over: this process is now the active consumer');
    role = event.role;
  });
  const pause = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => (wakeUp = undefined));

  const loop = async (): Promise<void> => {
    let failures = 0;
    while (!stopping) {
      session = new ConsumerSession({ ...config, strategy }, db, sink, events, sessionLogger);
      const sessionStartedAt = performance.now();
      try {
        const end = await session.run();
        if (end === 'switch-to-streaming' && !stopping) {
          failures = 0;
          continue; // caught up with protocol 1: the next session streams large transactions
        }
        if (!stopping) throw new Error('the server ended the replication stream');
      } catch (error) {
        if (stopping) break;
        if (error instanceof StandbyError) {
          // Waiting for the active process is this process's job now, not a failure: said once, at info.
          if (role !== 'standby') {
            sessionLogger.info(
              { activeConsumer: error.activeConsumer },
              'standby: another process consumes the slot; this one takes over when it stops',
            );
          } else if (error.activeConsumer !== activeConsumer) {
            sessionLogger.debug({ activeConsumer: error.activeConsumer }, 'standby: the slot is consumed by another process now');
          }
          if (role !== 'standby' || error.activeConsumer !== activeConsumer) {
            events.emit('role', { role: 'standby', activeConsumer: error.activeConsumer });
          }
          activeConsumer = error.activeConsumer;
          await pause(STANDBY_POLL_MS);
          continue;
        }
        if (error instanceof RebuildRequestedError) {
          // Asked for (budget-cdc resync), not an incident: no error log, no reconnect counted, no delay.
          sessionLogger.info({ detail: error.detail }, 'rebuild requested: starting a session that rebuilds Redis from the table');
          continue;
        }
        const cause = error instanceof Error ? error : new Error(String(error));
        const permanent = permanentErrorMessage(cause);
        if (permanent !== undefined) {
          sessionLogger.fatal({ err: permanent }, 'stopping: retrying cannot cure this error');
          events.emit('permanent-error', { message: permanent });
          throw new PermanentError(permanent, { cause });
        }
        // A session that made progress resets the delay: this failure is new, not a persisting one.
        const madeProgress = acknowledgedSinceFailure || performance.now() - sessionStartedAt > SESSION_PROGRESS_MS;
        failures = madeProgress ? 1 : failures + 1;
        acknowledgedSinceFailure = false;
        const retryInMs = Math.round(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (failures - 1)) * (0.5 + Math.random() / 2));
        sessionLogger.error(
          { err: cause.message, retryInMs, consecutiveFailures: failures },
          'replication session failed; resuming from the slot',
        );
        events.emit('session-failed', { error: cause, retryInMs, consecutiveFailures: failures });
        await pause(retryInMs);
      }
    }
  };

  const done = loop().finally(async () => {
    watcher.stop();
    sink.close();
    redis.disconnect();
    await db.destroy();
  });

  return {
    events,
    done,
    async stop() {
      if (!stopping) {
        stopping = true;
        wakeUp?.();
        await session?.stop();
      }
      // A consumer that stopped on a permanent error has said so through `done`; stopping it is not an error.
      await done.catch((error: unknown) => {
        if (!(error instanceof PermanentError)) throw error;
      });
    },
  };
}
