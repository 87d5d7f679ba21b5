import { parsePrometheusText, type PrometheusSample } from './prometheus-text.js';

// What `status --watch` computes from two scrapes of a consumer's /metrics, as Prometheus would with rate()
// and histogram_quantile() over the interval between them: pure functions, no I/O.

const SECOND_MS = 1000;
const ROWS_APPLIED = 'budget_cdc_rows_applied_total';
const FRESHNESS = 'budget_cdc_commit_to_redis_seconds';
const STAGE_DURATION = 'budget_cdc_stage_duration_seconds';
const ACTIVE = 'budget_cdc_active';

/** The stages of budget_cdc_stage_duration_seconds, in pipeline order. */
export const STAGES = ['build', 'write', 'acknowledge'] as const;
export type Stage = (typeof STAGES)[number];

/** A cumulative histogram bucket: observations at or below `le` seconds. */
export interface HistogramBucket {
  le: number;
  count: number;
}

/** The counters `status --watch` reads from one scrape of /metrics. */
export interface MetricsSample {
  /** When it was scraped, in ms since the epoch. */
  atMs: number;
  rowsApplied: number;
  /** budget_cdc_commit_to_redis_seconds buckets, by ascending `le`, +Inf last. */
  freshnessBuckets: HistogramBucket[];
  /** Seconds spent in each stage since the consumer started (the histogram's _sum). */
  stageSeconds: Record<Stage, number>;
  /** budget_cdc_active: true for the active consumer, false for a standby or one starting; null when absent. */
  active: boolean | null;
}

/** Freshness over an interval: from a transaction's COMMIT to Redis confirming its last write. */
export interface Freshness {
  transactions: number;
  p50Seconds: number;
  p99Seconds: number;
}

/** The figures of one interval between two scrapes. */
export interface WatchFigures {
  intervalSeconds: number;
  rowsPerSecond: number;
  /** null when no transaction reached Redis in the interval. */
  freshness: Freshness | null;
  /** Each stage's share (0 to 1) of the time spent in the interval; null when no batch was written. */
  stageShares: Record<Stage, number> | null;
  /** A counter went down: the consumer restarted, and the figures count from its start. */
  consumerRestarted: boolean;
}

/** Reads a MetricsSample from Prometheus text; counters the consumer has not exposed yet count as 0. */
export function readMetricsSample(text: string, atMs: number): MetricsSample {
  const samples = parsePrometheusText(text);
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v))?.value;
  const active = value(ACTIVE);
  return {
    atMs,
    rowsApplied: value(ROWS_APPLIED) ?? 0,
    freshnessBuckets: samples
      .filter((sample) => sample.name === `${FRESHNESS}_bucket` && sample.labels.le !== undefined)
      .map((sample: PrometheusSample) => ({ le: parseBound(sample.labels.le!), count: sample.value }))
      .sort((a, b) => a.le - b.le),
    stageSeconds: {
      build: value(`${STAGE_DURATION}_sum`, { stage: 'build' }) ?? 0,
      write: value(`${STAGE_DURATION}_sum`, { stage: 'write' }) ?? 0,
      acknowledge: value(`${STAGE_DURATION}_sum`, { stage: 'acknowledge' }) ?? 0,
    },
    active: active === undefined ? null : active === 1,
  };
}

function parseBound(le: string): number {
  return le === '+Inf' ? Infinity : Number(le);
}

/** The figures between two scrapes of the same consumer, `previous` taken before `current`. */
export function watchFigures(previous: MetricsSample, current: MetricsSample): WatchFigures {
  const intervalSeconds = Math.max(current.atMs - previous.atMs, 1) / SECOND_MS;
  // Counters only go up while a process lives: one that went down belongs to a restarted consumer, whose
  // counts since its start are the interval's (Prometheus's rate() reads a reset the same way).
  const consumerRestarted =
    current.rowsApplied < previous.rowsApplied ||
    totalCount(current.freshnessBuckets) < totalCount(previous.freshnessBuckets) ||
    STAGES.some((stage) => current.stageSeconds[stage] < previous.stageSeconds[stage]);
  const base = consumerRestarted ? emptySample(previous.atMs) : previous;
  const bucketDeltas = current.freshnessBuckets.map(({ le, count }) => ({
    le,
    count: count - (base.freshnessBuckets.find((bucket) => bucket.le === le)?.count ?? 0),
  }));
  const transactions = totalCount(bucketDeltas);
  const stageDeltas = Object.fromEntries(STAGES.map((stage) => [stage, current.stageSeconds[stage] - base.stageSeconds[stage]])) as Record<
    Stage,
    number
  >;
  const stageTotal = STAGES.reduce((sum, stage) => sum + stageDeltas[stage], 0);
  return {
    intervalSeconds,
    rowsPerSecond: (current.rowsApplied - base.rowsApplied) / intervalSeconds,
    freshness:
      transactions > 0
        ? { transactions, p50Seconds: histogramQuantile(0.5, bucketDeltas)!, p99Seconds: histogramQuantile(0.99, bucketDeltas)! }
        : null,
    stageShares:
      stageTotal > 0
        ? (Object.fromEntries(STAGES.map((stage) => [stage, stageDeltas[stage] / stageTotal])) as Record<Stage, number>)
        : null,
    consumerRestarted,
  };
}

function emptySample(atMs: number): MetricsSample {
  return { atMs, rowsApplied: 0, freshnessBuckets: [], stageSeconds: { build: 0, write: 0, acknowledge: 0 }, active: null };
}

/** Observations in a cumulative histogram: its +Inf bucket, else its largest. */
function totalCount(buckets: HistogramBucket[]): number {
  return buckets.at(-1)?.count ?? 0;
}

/**
 * The q-quantile of cumulative buckets (ascending `le`, +Inf last), as Prometheus's histogram_quantile():
 * linear within the bucket that holds it, from 0 for the first; in the +Inf bucket, the largest finite bound
 * (nothing is known above it). undefined when the buckets hold no observation.
 */
export function histogramQuantile(q: number, buckets: HistogramBucket[]): number | undefined {
  const total = totalCount(buckets);
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let countBelow = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank && bucket.count > countBelow) {
      if (bucket.le === Infinity) return lowerBound;
      return lowerBound + (bucket.le - lowerBound) * ((rank - countBelow) / (bucket.count - countBelow));
    }
    lowerBound = bucket.le;
    countBelow = bucket.count;
  }
  return lowerBound;
}
