import type { ConsumerEvents } from '../consumer/consumer-events.js';

/** A distribution service (--distribution URL) that fails as a whole: published for `status`, /readyz and the metrics. */
export interface DistributionUnavailable {
  /** When its requests started failing (ISO). */
  since: string;
  /** The first failure's reason (a timeout, a status, a lost connection, a body that is not results). */
  reason: string;
}

/**
 * Follows the consumer's 'distribution-availability' events: unavailable from the first failed request after an
 * answer to the next answer. The consumer's strategy outlives its sessions, so neither a session's end nor a
 * change of role clears it: only the service answering again does.
 */
export class DistributionAvailabilityTracker {
  private unavailable: DistributionUnavailable | undefined;

  constructor(events: ConsumerEvents) {
    events.on('distribution-availability', (event) => {
      this.unavailable = event.available ? undefined : { since: event.since.toISOString(), reason: event.reason };
    });
  }

  /** Since when and why the service fails, or undefined while it answers (or the even rule is used). */
  current(): DistributionUnavailable | undefined {
    return this.unavailable;
  }
}

/** "distribution service unavailable since 2026-12-01T01:02:03.000Z: <reason>" */
export function describeDistributionUnavailable(unavailable: DistributionUnavailable): string {
  return `distribution service unavailable since ${unavailable.since}: ${unavailable.reason}`;
}
