import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ConsumerEvents } from '../consumer/consumer-events.js';

const PREFIX = 'budget_cdc_';
const SECOND_MS = 1000;
/** From 5 ms (a nearby service, a few jobs) to 30 s (a slow one near a long --distribution-timeout). */
const REQUEST_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const OUTCOMES = ['answered', 'failed'] as const;

/**
 * The distribution service's metrics (--distribution URL), in a consumer's registry, fed by its events. They are
 * registered with the even rule too (at 0), so that dashboards and alerts find them on every consumer.
 */
export function registerDistributionMetrics(registry: Registry, events: ConsumerEvents): void {
  const registers = [registry];
  const unavailableSince = new Gauge({
    name: PREFIX + 'distribution_unavailable_since_seconds',
    help:
      'Unix time (seconds) since which the distribution service fails as a whole (timeouts, statuses other than 200, ' +
      'lost connections): its batches are retried and hold their acknowledgement. 0 while it answers, or with the even rule.',
    registers,
  });
  unavailableSince.set(0);
  const requests = new Counter({
    name: PREFIX + 'distribution_requests_total',
    help: 'Requests to the distribution service, by outcome: answered as a whole, or failed (sent again later).',
    labelNames: ['outcome'],
    registers,
  });
  const jobs = new Counter({
    name: PREFIX + 'distribution_jobs_total',
    help: 'Jobs sent to the distribution service, by the outcome of their request (a failed request counts its jobs again when retried).',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of OUTCOMES) {
    requests.inc({ outcome }, 0);
    jobs.inc({ outcome }, 0);
  }
  const duration = new Histogram({
    name: PREFIX + 'distribution_request_duration_seconds',
    help: 'Time from sending a request to the distribution service to its whole answer, for answered requests.',
    buckets: REQUEST_BUCKETS_SECONDS,
    registers,
  });

  events.on('distribution-availability', (event) => unavailableSince.set(event.available ? 0 : event.since.getTime() / SECOND_MS));
  events.on('distribution-request', ({ jobs: count, durationMs, ok }) => {
    const outcome = ok ? 'answered' : 'failed';
    requests.inc({ outcome });
    jobs.inc({ outcome }, count);
    // A failed request's time is mostly the timeout or a connection error's: it would blur the service's latency.
    if (ok) duration.observe(durationMs / SECOND_MS);
  });
}
