import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText } from '../../src/commands/prometheus-text.js';
import { makeConsumerEvents } from '../../src/consumer/consumer-events.js';
import { makeConsumerMetrics } from '../../src/ops/consumer-metrics.js';
import { DistributionAvailabilityTracker } from '../../src/ops/distribution-availability.js';
import { registerDistributionMetrics } from '../../src/ops/distribution-metrics.js';
import { FailureTracker } from '../../src/ops/failure-tracker.js';
import type { SlotMonitor } from '../../src/ops/slot-monitor.js';

// The distribution service's metrics and availability follow the consumer's events (issue 14).

const SINCE = new Date('2026-12-01T01:00:00.000Z');

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const samples = parsePrometheusText(await registry.metrics());
  return samples.find((s) => s.name === name && Object.entries(labels).every(([key, label]) => s.labels[key] === label))?.value;
}

describe('the distribution metrics', () => {
  it('are registered at 0 in every consumer, whatever its budget rule', async () => {
    const events = makeConsumerEvents();
    const monitor: SlotMonitor = { latest: () => undefined, refresh: () => undefined, onReading: () => undefined, stop: () => undefined };
    const registry = makeConsumerMetrics(events, monitor, new EventEmitter(), new FailureTracker(events));
    expect(await value(registry, 'budget_cdc_distribution_unavailable_since_seconds')).toBe(0);
    expect(await value(registry, 'budget_cdc_distribution_requests_total', { outcome: 'answered' })).toBe(0);
    expect(await value(registry, 'budget_cdc_distribution_requests_total', { outcome: 'failed' })).toBe(0);
    expect(await value(registry, 'budget_cdc_distribution_request_duration_seconds_count')).toBe(0);
  });

  it('count requests and jobs by outcome, and time answered requests only', async () => {
    const events = makeConsumerEvents();
    const registry = new Registry();
    registerDistributionMetrics(registry, events);
    events.emit('distribution-request', { jobs: 500, durationMs: 40, ok: true });
    events.emit('distribution-request', { jobs: 20, durationMs: 10_000, ok: false });
    events.emit('distribution-request', { jobs: 3, durationMs: 20, ok: true });
    expect(await value(registry, 'budget_cdc_distribution_requests_total', { outcome: 'answered' })).toBe(2);
    expect(await value(registry, 'budget_cdc_distribution_requests_total', { outcome: 'failed' })).toBe(1);
    expect(await value(registry, 'budget_cdc_distribution_jobs_total', { outcome: 'answered' })).toBe(503);
    expect(await value(registry, 'budget_cdc_distribution_jobs_total', { outcome: 'failed' })).toBe(20);
    expect(await value(registry, 'budget_cdc_distribution_request_duration_seconds_count')).toBe(2);
    expect(await value(registry, 'budget_cdc_distribution_request_duration_seconds_sum')).toBeCloseTo(0.06);
  });

  it('hold the unix time the service became unavailable, and 0 once it answers', async () => {
    const events = makeConsumerEvents();
    const registry = new Registry();
    registerDistributionMetrics(registry, events);
    events.emit('distribution-availability', { available: false, since: SINCE, reason: 'HTTP 503' });
    expect(await value(registry, 'budget_cdc_distribution_unavailable_since_seconds')).toBe(SINCE.getTime() / 1000);
    events.emit('distribution-availability', { available: true });
    expect(await value(registry, 'budget_cdc_distribution_unavailable_since_seconds')).toBe(0);
  });
});

describe('DistributionAvailabilityTracker', () => {
  it('is unavailable from the event saying so until the service answers, through session failures', () => {
    const events = makeConsumerEvents();
    const tracker = new DistributionAvailabilityTracker(events);
    expect(tracker.current()).toBeUndefined();
    events.emit('distribution-availability', { available: false, since: SINCE, reason: 'connect ECONNREFUSED 127.0.0.1:8080' });
    events.emit('session-failed', { error: new Error('lost'), retryInMs: 1000, consecutiveFailures: 1 });
    expect(tracker.current()).toEqual({ since: SINCE.toISOString(), reason: 'connect ECONNREFUSED 127.0.0.1:8080' });
    events.emit('distribution-availability', { available: true });
    expect(tracker.current()).toBeUndefined();
  });
});
