import type { Config } from '../config.js';
import { makeConsumerEvents } from '../consumer/consumer-events.js';
import { startConsumer, type Consumer } from '../consumer/consumer.js';
import type { Logger } from '../logger.js';
import { observeConsumer, type ConsumerObserver } from '../ops/consumer-observer.js';
import type { ConsumerHealth } from '../ops/readiness.js';
import type { Registry } from 'prom-client';

// The consumer knows nothing of observability: it emits events. Here, where commands wire things together,
// its observer (slot monitor, metrics, event logs, what `status` reads) subscribes to them.

/** A consumer with its observer: what `run` serves on /readyz and /metrics. */
export interface ObservedConsumer extends Consumer {
  /** This consumer's metrics (a registry of its own), fed by its events and the slot monitor. */
  readonly metrics: Registry;
  /** Redis connection, session and slot state, for /readyz. */
  health(): ConsumerHealth;
}

/** Starts the consumer (see startConsumer) and observes it with its own connections until it stops. */
export async function startObservedConsumer(config: Config, logger: Logger): Promise<ObservedConsumer> {
  const events = makeConsumerEvents();
  const observerLogger = logger.child({ component: 'consumer', slot: config.slotName });
  let observer: ConsumerObserver | undefined;
  const consumer = await startConsumer(config, logger, events, ({ db, redis }) => {
    observer = observeConsumer(events, db, redis, config.slotName, observerLogger);
    return observer;
  });
  const watching = observer!;
  return { ...consumer, metrics: watching.metrics, health: () => watching.health() };
}
