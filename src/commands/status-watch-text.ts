import type { StatusReport } from './status.js';
import { formatBytes, formatConsumer } from './status-text.js';
import { STAGES, watchFigures, type MetricsSample, type WatchFigures } from './watch-figures.js';

// One refresh of `budget-cdc status --watch`, as lines (a terminal) or one JSON object (--json): pure, so that
// what an operator reads can be tested from fixed inputs.

/** What one refresh knows: the status report (PostgreSQL, Redis) and two scrapes of a consumer's /metrics. */
export interface WatchBlock {
  /** When the refresh started. */
  at: Date;
  /** null when PostgreSQL could not be read: `reportError` says why. */
  report: StatusReport | null;
  reportError: string | null;
  metrics: {
    /** The /metrics URL scraped; null when the endpoint is off (--http-port 0). */
    url: string | null;
    /** Why this refresh has no scrape; null when it has one. */
    error: string | null;
    /** The scrape of the refresh before, for rates; null on the first refresh or after a failed scrape. */
    previous: MetricsSample | null;
    current: MetricsSample | null;
  };
}

/** The error shown when /metrics does not answer. */
export function metricsUnreachable(url: string): string {
  return `metrics endpoint ${url} not reachable: is budget-cdc run serving it (--http-port)?`;
}

/** The lines of one refresh. */
export function formatWatch(block: WatchBlock): string[] {
  const lines = [`budget-cdc status --watch, ${block.at.toISOString()} (every second; Ctrl-C stops)`];
  const { report } = block;
  if (report === null) lines.push(`postgres: ${block.reportError}`);
  else lines.push(formatSlot(report), formatConsumers(report));
  lines.push(...formatMetrics(block.metrics));
  if (report !== null) {
    const { health } = report;
    lines.push(health.exitCode === 0 ? 'healthy' : `unhealthy (status would exit ${health.exitCode}): ${health.problems.join('; ')}`);
  }
  return lines;
}

function formatSlot(report: StatusReport): string {
  const { slot } = report;
  if (!slot.exists) return `slot ${slot.name}: does not exist (created by "budget-cdc run")`;
  const seconds = slot.lagSeconds === null ? 'seconds unknown (measured by a running consumer)' : `${slot.lagSeconds.toFixed(1)} s`;
  return `slot ${slot.name}: ${slot.active ? 'streaming' : 'inactive (no consumer streams from it)'}; lag ${formatBytes(slot.lagBytes)}, ${seconds}`;
}

function formatConsumers(report: StatusReport): string {
  if (!report.redis.reachable) return `consumers: unknown, Redis does not answer (${report.redis.error})`;
  const { consumers } = report;
  if (consumers.length === 0) return 'consumers: none running (no consumer published its role in the last 10 s)';
  const noActive = consumers.some((consumer) => consumer.role === 'active') ? '' : ' (no active consumer)';
  return `consumers: ${consumers.map(formatConsumer).join('; ')}${noActive}`;
}

function formatMetrics(metrics: WatchBlock['metrics']): string[] {
  if (metrics.url === null) return ['metrics: the endpoint is off (--http-port 0): rows/s, freshness and stages need it'];
  if (metrics.error !== null) return [metrics.error];
  if (metrics.previous === null || metrics.current === null) {
    return [`rows/s, freshness and stages: from the next refresh (they compare two scrapes of ${metrics.url})`];
  }
  const figures = watchFigures(metrics.previous, metrics.current);
  const interval = `in the last ${figures.intervalSeconds.toFixed(1)} s`;
  const standby = metrics.current.active === false ? '; this process is not the active consumer: it applies nothing' : '';
  const lines = [`rows/s ${figures.rowsPerSecond.toFixed(1)} (${metrics.url}${standby})`];
  if (figures.consumerRestarted) lines.push('  the consumer restarted: its figures count from its start');
  lines.push(
    figures.freshness === null
      ? `freshness (COMMIT to readable in Redis): no transaction reached Redis ${interval}`
      : `freshness (COMMIT to readable in Redis): p50 ${formatSeconds(figures.freshness.p50Seconds)}, ` +
          `p99 ${formatSeconds(figures.freshness.p99Seconds)} over ${figures.freshness.transactions} transactions ${interval}`,
  );
  const shares = figures.stageShares;
  lines.push(
    shares === null
      ? `stages: no batch written ${interval}`
      : `stages (share of time): ${STAGES.map((stage) => `${stage} ${(shares[stage] * 100).toFixed(0)}%`).join(', ')}`,
  );
  return lines;
}

/** "12.5 ms" below a second, "2.50 s" from it. */
export function formatSeconds(seconds: number): string {
  return seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
}

/** What `status --watch --json` prints per refresh: the status report and the interval's figures. */
export interface WatchJson {
  at: string;
  status: StatusReport | null;
  statusError: string | null;
  metrics: { url: string | null; error: string | null; active: boolean | null; figures: WatchFigures | null };
}

/** The JSON object of one refresh. */
export function watchJson(block: WatchBlock): WatchJson {
  const { previous, current } = block.metrics;
  return {
    at: block.at.toISOString(),
    status: block.report,
    statusError: block.reportError,
    metrics: {
      url: block.metrics.url,
      error: block.metrics.error,
      active: current?.active ?? null,
      figures: previous !== null && current !== null ? watchFigures(previous, current) : null,
    },
  };
}
