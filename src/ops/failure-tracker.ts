import { SESSION_PROGRESS_MS, type ConsumerEvents } from '../consumer/consumer-events.js';

/** A consumer whose sessions keep failing: published for `status`, /readyz and the metrics. */
export interface ConsumerFailing {
  /** Sessions that failed in a row, with no progress in between. */
  consecutiveFailures: number;
  /** The last failure's message. */
  lastError: string;
  /** When the first of these failures happened (ISO). */
  since: string;
}

/**
 * Follows a consumer's sessions: failing from a session's failure until a later one acknowledges a
 * position or streams for SESSION_PROGRESS_MS, as the consumer counts failures in a row.
 */
export class FailureTracker {
  private failing: ConsumerFailing | undefined;
  private streamingSinceMs: number | undefined;

  constructor(events: ConsumerEvents) {
    events.on('session-failed', ({ error, consecutiveFailures }) => {
      this.streamingSinceMs = undefined;
      const since = consecutiveFailures > 1 && this.failing !== undefined ? this.failing.since : new Date().toISOString();
      this.failing = { consecutiveFailures, lastError: error.message, since };
    });
    events.on('session-started', () => (this.streamingSinceMs = performance.now()));
    events.on('acknowledged', () => (this.failing = undefined));
  }

  /** The failure state now, or undefined when the consumer is not failing. */
  current(): ConsumerFailing | undefined {
    const streamingSince = this.streamingSinceMs;
    if (streamingSince !== undefined && performance.now() - streamingSince >= SESSION_PROGRESS_MS) this.failing = undefined;
    return this.failing;
  }
}

/** "failed 4 times in a row since 2026-12-01T01:02:03.000Z: <error>" */
export function describeFailing(failing: ConsumerFailing): string {
  const times = failing.consecutiveFailures === 1 ? 'once' : `${failing.consecutiveFailures} times in a row`;
  return `failed ${times} since ${failing.since}: ${failing.lastError}`;
}
