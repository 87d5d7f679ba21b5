import type { Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { ConsumerEvents } from '../consumer/consumer-events.js';
import type { Database } from '../db/database.js';
import { logConsumerEvents } from './consumer-event-log.js';
import { makeConsumerMetrics } from './consumer-metrics.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../sink/redis-client.js';
import { evictionWarning, readEvictionState, SAFE_EVICTION_POLICY } from '../sink/redis-eviction.js';
import { publishLag } from './published-lag.js';
import { DistributionAvailabilityTracker } from './distribution-availability.js';
import { FailureTracker } from './failure-tracker.js';
import { publishRole } from './published-role.js';
import { consumerApplicationName } from '../replication/slot-owner.js';
import type { ConsumerHealth, ConsumerRole } from './readiness.js';
import { startSlotMonitor } from './slot-monitor.js';

/** What watches a consumer from outside its hot path: slot monitor, metrics, event logs, lag for `status`. */
export interface ConsumerObserver {
  /** The consumer's own Prometheus registry (not prom-client's global one). */
  readonly metrics: Registry;
  health(): ConsumerHealth;
  stop(): void;
}

export function observeConsumer(
  events: ConsumerEvents,
  db: Kysely<Database>,
  redis: RedisClient,
  slotName: string,
  logger: Logger,
): ConsumerObserver {
  const monitor = startSlotMonitor(db, slotName, logger);
  const failures = new FailureTracker(events);
  const distribution = new DistributionAvailabilityTracker(events);
  const metrics = makeConsumerMetrics(events, monitor, redis, failures);
  logConsumerEvents(events, logger);
  let streaming = false;
  let role: ConsumerRole = 'starting';
  let activeConsumer: string | undefined;
  let replicasBehind: ConsumerHealth['replicasBehind'];
  events.on('session-started', () => {
    streaming = true;
    monitor.refresh();
  });
  events.on('session-failed', () => {
    streaming = false;
    replicasBehind = undefined;
  });
  events.on('resync-started', () => (streaming = false));
  events.on('role', (event) => {
    role = event.role;
    activeConsumer = event.activeConsumer;
    if (role === 'standby') streaming = false;
  });
  events.on('replicas-behind', ({ replicas, required }) => (replicasBehind = { replicas, required }));
  events.on('replicas-confirmed', () => (replicasBehind = undefined));
  let lastPublishError = '';
  const processName = consumerApplicationName();
  const evictionTimer = watchEviction(events, redis, logger);
  const published = (work: Promise<unknown>): void => {
    work.then(
      () => (lastPublishError = ''),
      (error: unknown) => {
        // Redis down: the consumer reports that itself; say it here once at debug.
        const message = error instanceof Error ? error.message : String(error);
        if (message !== lastPublishError) logger.debug({ err: message }, 'cannot publish the lag or role to Redis');
        lastPublishError = message;
      },
    );
  };
  monitor.onReading((reading) => published(publishLag(redis, slotName, reading)));
  // On a timer of its own, not the slot monitor's readings: a consumer that cannot reach PostgreSQL still
  // tells `status` that it runs, and why it fails.
  const publishRoleNow = (): void =>
    published(
      publishRole(redis, slotName, processName, role, {
        failing: failures.current(),
        distributionUnavailable: distribution.current(),
      }),
    );
  // At once on a change, so that `status` right after one sees it, and every second so that it does not expire.
  events.on('role', publishRoleNow);
  events.on('session-failed', publishRoleNow);
  events.on('distribution-availability', publishRoleNow);
  publishRoleNow();
  const roleTimer = setInterval(publishRoleNow, ROLE_PUBLISH_INTERVAL_MS).unref();
  return {
    metrics,
    health: () => ({
      redisConnected: redis.status === 'ready',
      streaming,
      reading: monitor.latest(),
      role,
      activeConsumer,
      replicasBehind,
      failing: failures.current(),
      distributionUnavailable: distribution.current(),
    }),
    stop: () => {
      monitor.stop();
      clearInterval(evictionTimer);
      clearInterval(roleTimer);
    },
  };
}

/** How often the process's role (and failure state) is written for `status`, well inside its 10 s expiry. */
const ROLE_PUBLISH_INTERVAL_MS = 1_000;

/** How often Redis's eviction policy and evicted keys are read. */
const EVICTION_CHECK_INTERVAL_MS = 10_000;

/** Reads eviction at once and every 10 s; warns when the policy is (or becomes) one that can delete job keys. */
function watchEviction(events: ConsumerEvents, redis: RedisClient, logger: Logger): NodeJS.Timeout {
  let warnedPolicy: string | undefined;
  const check = (): void => {
    readEvictionState(redis).then(
      (state) => {
        if (state.policy !== SAFE_EVICTION_POLICY && state.policy !== warnedPolicy) {
          logger.warn({ policy: state.policy, evictedKeys: state.evictedKeys }, evictionWarning(state.policy));
        }
        warnedPolicy = state.policy === SAFE_EVICTION_POLICY ? undefined : state.policy;
        events.emit('redis-eviction', state);
      },
      () => undefined, // Redis unreachable: the consumer reports that itself
    );
  };
  check();
  return setInterval(check, EVICTION_CHECK_INTERVAL_MS).unref();
}
