import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText } from '../../src/commands/prometheus-text.js';
import type { StatusReport } from '../../src/commands/status.js';
import { formatWatch, metricsUnreachable, watchJson, type WatchBlock } from '../../src/commands/status-watch-text.js';
import { metricsUrl } from '../../src/commands/status-watch.js';
import { histogramQuantile, readMetricsSample, watchFigures, type MetricsSample } from '../../src/commands/watch-figures.js';

// `status --watch` computes rates and quantiles from two scrapes of /metrics, as Prometheus would over the same
// interval; these are the pure parts, from fixed inputs.

const URL = 'http://127.0.0.1:9187/metrics';
const AT = new Date('2026-12-01T05:00:00.000Z');

function sample(
  atMs: number,
  rows: number,
  buckets: Array<[number, number]>,
  stages: [number, number, number],
  active = true,
): MetricsSample {
  return {
    atMs,
    rowsApplied: rows,
    freshnessBuckets: buckets.map(([le, count]) => ({ le, count })),
    stageSeconds: { build: stages[0], write: stages[1], acknowledge: stages[2] },
    active,
  };
}

const report: StatusReport = {
  database: { url: 'postgres://budget@db/jobs' },
  table: null,
  slot: {
    name: 'budget_cdc',
    exists: true,
    active: true,
    confirmedLsn: '0/16B3748',
    lagBytes: 2048,
    lagSeconds: 0.4,
    retainedBytes: 4096,
    walStatus: 'reserved',
    safeWalSizeBytes: null,
  },
  redis: { url: 'redis://127.0.0.1:6379', reachable: true, error: null, checkpoint: null, deadLetters: 0, eviction: null, rebuilds: null },
  consumers: [
    { process: 'budget-cdc host-a pid 17', role: 'active', at: AT.toISOString() },
    { process: 'budget-cdc host-b pid 9', role: 'standby', at: AT.toISOString() },
  ],
  budgetRule: { recorded: null, configured: 'even' },
  health: { exitCode: 0, problems: [], maxLagBytes: 1024, maxLagSeconds: 300 },
};

describe('parsePrometheusText', () => {
  it('reads names, labels (with escapes), values and +Inf, and skips comments', () => {
    const text = [
      '# HELP budget_cdc_rows_applied_total Rows.',
      '# TYPE budget_cdc_rows_applied_total counter',
      'budget_cdc_rows_applied_total 1520',
      'x_bucket{le="+Inf",path="a \\"b\\"\\\\c"} 3 1700000000000',
      'x_gauge -2.5e-3',
      '',
    ].join('\n');
    expect(parsePrometheusText(text)).toEqual([
      { name: 'budget_cdc_rows_applied_total', labels: {}, value: 1520 },
      { name: 'x_bucket', labels: { le: '+Inf', path: 'a "b"\\c' }, value: 3 },
      { name: 'x_gauge', labels: {}, value: -0.0025 },
    ]);
  });

  it('names the line it cannot read', () => {
    expect(() => parsePrometheusText('ok 1\n{broken 2')).toThrow('line 2 of the metrics is not a Prometheus sample: {broken 2');
  });

  it('reads what prom-client writes: the counters, buckets and stage sums status --watch uses', async () => {
    const registry = new Registry();
    const registers = [registry];
    new Counter({ name: 'budget_cdc_rows_applied_total', help: 'h', registers }).inc(42);
    new Gauge({ name: 'budget_cdc_active', help: 'h', registers }).set(0);
    const freshness = new Histogram({ name: 'budget_cdc_commit_to_redis_seconds', help: 'h', buckets: [0.01, 0.1, 1], registers });
    for (const seconds of [0.005, 0.05, 0.05, 5]) freshness.observe(seconds);
    const stages = new Histogram({ name: 'budget_cdc_stage_duration_seconds', help: 'h', labelNames: ['stage'], registers });
    stages.observe({ stage: 'build' }, 0.25);
    stages.observe({ stage: 'write' }, 0.5);
    expect(readMetricsSample(await registry.metrics(), 1000)).toEqual(
      sample(
        1000,
        42,
        [
          [0.01, 1],
          [0.1, 3],
          [1, 3],
          [Infinity, 4],
        ],
        [0.25, 0.5, 0],
        false,
      ),
    );
  });
});

describe('histogramQuantile', () => {
  const buckets = [
    { le: 0.01, count: 2 },
    { le: 0.05, count: 6 },
    { le: 0.1, count: 10 },
    { le: Infinity, count: 10 },
  ];

  it('interpolates linearly inside the bucket holding the rank, as histogram_quantile()', () => {
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.04, 10); // rank 5: 0.01 + 0.04 × (5 − 2) / 4
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.09875, 10); // rank 9.9: 0.05 + 0.05 × 3.9 / 4
    expect(histogramQuantile(0.1, buckets)).toBeCloseTo(0.005, 10); // rank 1 in the first bucket, from 0
  });

  it('answers the largest finite bound for a rank in +Inf, and undefined without observations', () => {
    expect(
      histogramQuantile(0.5, [
        { le: 1, count: 0 },
        { le: Infinity, count: 3 },
      ]),
    ).toBe(1);
    expect(histogramQuantile(0.5, [{ le: Infinity, count: 0 }])).toBeUndefined();
  });
});

describe('watchFigures', () => {
  const previous = sample(
    10_000,
    1000,
    [
      [0.01, 50],
      [0.1, 90],
      [Infinity, 100],
    ],
    [1, 3, 1],
  );

  it('rows/s, freshness and stage shares come from the differences between the two scrapes only', () => {
    const current = sample(
      12_000,
      1150,
      [
        [0.01, 50],
        [0.1, 94],
        [Infinity, 104],
      ],
      [1.1, 3.3, 1.1],
    );
    const figures = watchFigures(previous, current);
    expect(figures.intervalSeconds).toBe(2);
    expect(figures.rowsPerSecond).toBe(75);
    // 4 transactions between 0.01 and 0.1 s: the earlier 100 observations do not count.
    expect(figures.freshness).toEqual({ transactions: 4, p50Seconds: expect.closeTo(0.055, 10), p99Seconds: expect.closeTo(0.0991, 10) });
    expect(figures.stageShares!.build).toBeCloseTo(0.2, 10);
    expect(figures.stageShares!.write).toBeCloseTo(0.6, 10);
    expect(figures.stageShares!.acknowledge).toBeCloseTo(0.2, 10);
    expect(figures.consumerRestarted).toBe(false);
  });

  it('says nothing happened rather than repeating old figures when no transaction or batch came', () => {
    const figures = watchFigures(previous, { ...previous, atMs: 11_000 });
    expect(figures).toEqual({ intervalSeconds: 1, rowsPerSecond: 0, freshness: null, stageShares: null, consumerRestarted: false });
  });

  it('counts from zero when a counter went down (the consumer restarted)', () => {
    const current = sample(
      11_000,
      30,
      [
        [0.01, 2],
        [0.1, 2],
        [Infinity, 2],
      ],
      [0.1, 0.1, 0],
    );
    const figures = watchFigures(previous, current);
    expect(figures.consumerRestarted).toBe(true);
    expect(figures.rowsPerSecond).toBe(30);
    expect(figures.freshness?.transactions).toBe(2);
  });
});

describe('formatWatch', () => {
  const previous = sample(
    0,
    100,
    [
      [0.01, 1],
      [0.1, 1],
      [Infinity, 1],
    ],
    [0.5, 1, 0.5],
  );
  const current = sample(
    1000,
    350,
    [
      [0.01, 1],
      [0.1, 11],
      [Infinity, 11],
    ],
    [0.55, 1.3, 0.65],
  );

  it('shows the slot, who consumes it, rows/s, freshness p50/p99 and the stage split', () => {
    const block: WatchBlock = { at: AT, report, reportError: null, metrics: { url: URL, error: null, previous, current } };
    expect(formatWatch(block)).toEqual([
      'budget-cdc status --watch, 2026-12-01T05:00:00.000Z (every second; Ctrl-C stops)',
      'slot budget_cdc: streaming; lag 2048 bytes, 0.4 s',
      'consumers: active budget-cdc host-a pid 17; standby budget-cdc host-b pid 9',
      `rows/s 250.0 (${URL})`,
      'freshness (COMMIT to readable in Redis): p50 55.0 ms, p99 99.1 ms over 10 transactions in the last 1.0 s',
      'stages (share of time): build 10%, write 60%, acknowledge 30%',
      'healthy',
    ]);
  });

  it('says when no transaction reached Redis, and that a standby applies nothing', () => {
    const idle = { ...previous, atMs: 1000, active: false };
    const block: WatchBlock = { at: AT, report, reportError: null, metrics: { url: URL, error: null, previous, current: idle } };
    expect(formatWatch(block).slice(3, 6)).toEqual([
      `rows/s 0.0 (${URL}; this process is not the active consumer: it applies nothing)`,
      'freshness (COMMIT to readable in Redis): no transaction reached Redis in the last 1.0 s',
      'stages: no batch written in the last 1.0 s',
    ]);
  });

  it('shows the rest when /metrics does not answer, or PostgreSQL does not', () => {
    const noConsumer = { ...report, consumers: [], slot: { ...report.slot, active: false, lagSeconds: null } };
    const unreachable: WatchBlock = {
      at: AT,
      report: noConsumer,
      reportError: null,
      metrics: { url: URL, error: metricsUnreachable(URL), previous: null, current: null },
    };
    expect(formatWatch(unreachable).slice(1)).toEqual([
      'slot budget_cdc: inactive (no consumer streams from it); lag 2048 bytes, seconds unknown (measured by a running consumer)',
      'consumers: none running (no consumer published its role in the last 10 s)',
      `metrics endpoint ${URL} not reachable: is budget-cdc run serving it (--http-port)?`,
      'healthy',
    ]);
    const noPostgres: WatchBlock = { ...unreachable, report: null, reportError: 'cannot connect to PostgreSQL' };
    expect(formatWatch(noPostgres).slice(1)).toEqual([
      'postgres: cannot connect to PostgreSQL',
      `metrics endpoint ${URL} not reachable: is budget-cdc run serving it (--http-port)?`,
    ]);
  });

  it('--json: the report and the interval figures, null before a second scrape', () => {
    const first = watchJson({ at: AT, report, reportError: null, metrics: { url: URL, error: null, previous: null, current } });
    expect(first.metrics).toEqual({ url: URL, error: null, active: true, figures: null });
    const second = watchJson({ at: AT, report, reportError: null, metrics: { url: URL, error: null, previous, current } });
    expect(second.status).toBe(report);
    expect(second.metrics.figures?.rowsPerSecond).toBe(250);
    expect(second.metrics.figures?.freshness?.transactions).toBe(10);
  });
});

describe('metricsUrl', () => {
  const health = { httpPort: 9187, httpPortIsDefault: true, httpHost: '127.0.0.1', maxLagBytes: 1, maxLagSeconds: 1 };

  it('connects to loopback for a consumer that listens on every address, brackets IPv6, null when off', () => {
    expect(metricsUrl(health)).toBe('http://127.0.0.1:9187/metrics');
    expect(metricsUrl({ ...health, httpHost: '0.0.0.0' })).toBe('http://127.0.0.1:9187/metrics');
    expect(metricsUrl({ ...health, httpHost: '::' })).toBe('http://[::1]:9187/metrics');
    expect(metricsUrl({ ...health, httpHost: 'fd00::5' })).toBe('http://[fd00::5]:9187/metrics');
    expect(metricsUrl({ ...health, httpPort: 0 })).toBeNull();
  });
});
