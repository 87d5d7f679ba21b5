import { WALSENDER_ACTIVITIES, type WalsenderActivity } from './bench-sql.js';
import { median } from './stats.js';

const MIB = 1024 * 1024;
const MILLION = 1_000_000;
/** The goal for the cluster: at least this share of the single Redis's end-to-end rate. */
export const CLUSTER_RATE_TARGET = 0.7;
/** The goal for a distribution service (the example, even rule, on loopback): this share of the built-in rate. */
export const DISTRIBUTION_RATE_TARGET = 0.5;
/** The goal for a 1M-row COPY with the consumer running: at most this many times its duration alone. */
export const COPY_SLOWDOWN_TARGET = 1.15;
/** The goal for COMMIT → last key of a 1M-row COPY: at most this many times the floor (Redis alone). */
export const FRESHNESS_TARGET = 1.2;
/** Issues 4 and 15: the consumer's peak RSS, whatever the transaction's size and with streaming on. */
export const PEAK_RSS_TARGET_MIB = 128;

/** Rates of repeated runs over the same number of rows. */
export interface RateSeries {
  seconds: number[];
  rowsPerSecond: number[];
  medianRowsPerSecond: number;
}

/** One target of the issue, checked. */
export interface TargetResult {
  name: string;
  target: string;
  value: number;
  pass: boolean;
}

/** What a run ran on and with; the head of every results file. */
export interface BenchSetup {
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  /** The checked-out commit. */
  commit: string | undefined;
  /** Whether tracked files differed from that commit (the figures are then of uncommitted code). */
  modified: boolean | undefined;
  rows: number;
  samples: number;
  postgres: { version: string; settings: Record<string, string> };
  redis: { version: string };
}

/** End to end with one replica attached, BUDGET_CDC_REDIS_MIN_REPLICAS 0 and 1 alternated: the cost of WAIT. */
export interface WaitCostResults {
  replicas: number;
  wait0: RateSeries;
  wait1: RateSeries;
  /** WAIT 1's median rate to WAIT 0's: a reported cost, no target. */
  ratio: number;
}

/** `npm run bench -- --only-wait`; written as JSON to bench/results/latest-only-wait.json. */
export interface WaitOnlyResults extends BenchSetup {
  waitCost: WaitCostResults;
}

/** budget-cdc run catching up with a committed load, against pg_recvlogical's reference of the same run. */
export type EndToEndResults = RateSeries & {
  /** To pg_recvlogical's median rate. */
  ratio: number;
  /** From spawn until the slot was active, per sample. */
  startupSeconds: (number | null)[];
  peakRssMiB: number[];
  medianPeakRssMiB: number;
};

/** `npm run bench -- --only-e2e`; written as JSON to bench/results/latest-only-e2e.json. */
export interface EndToEndOnlyResults extends BenchSetup {
  reference: RateSeries;
  endToEnd: EndToEndResults;
}

/** End to end into one Redis target, with what its runs cost in CPU. */
export type SinkCostSeries = RateSeries & {
  /** CPU seconds of Redis (INFO cpu user + sys, summed over the masters) per 1M rows, per sample. */
  redisCpuSecondsPerMillionRows: number[];
  medianRedisCpuSecondsPerMillionRows: number;
  /** CPU seconds of the consumer (from its spawn until it caught up) per 1M rows, per sample. */
  consumerCpuSecondsPerMillionRows: number[];
  medianConsumerCpuSecondsPerMillionRows: number;
  /** Commands Redis ran per row (INFO commandstats, summed over the masters), per sample. */
  redisCommandsPerRow: number[];
  /** Transactions (EXEC) Redis ran per 1,000 rows, per sample. */
  transactionsPerThousandRows: number[];
  /** From spawn until the slot was active, per sample. */
  startupSeconds: (number | null)[];
  /** The job keys each master held after each sample. */
  keysPerMaster: number[][];
};

/** End to end into the bench Redis and into a Redis Cluster of `masters` masters without replicas, alternated. */
export interface ClusterComparisonResults {
  masters: number;
  single: SinkCostSeries;
  cluster: SinkCostSeries;
  /** The cluster's median rate to the single Redis's. */
  ratio: number;
}

/** `npm run bench -- --only-cluster`; written as JSON to bench/results/latest-only-cluster.json. */
export interface ClusterOnlyResults extends BenchSetup {
  cluster: ClusterComparisonResults;
}

/** End to end with the built-in even split and with the example distribution service, alternated. */
export interface DistributionComparisonResults {
  /** The service's rule (--rule): `even`, so that both write the same keys. */
  rule: string;
  builtIn: DistributionCostSeries;
  service: DistributionCostSeries & {
    /** CPU seconds of the service process over each run, per 1M rows. */
    serviceCpuSecondsPerMillionRows: number[];
    medianServiceCpuSecondsPerMillionRows: number;
  };
  /** The service's median rate to the built-in split's. */
  ratio: number;
}

/** One side of DistributionComparisonResults. */
export type DistributionCostSeries = RateSeries & {
  /** CPU seconds of the consumer (from its spawn until it caught up) per 1M rows, per sample. */
  consumerCpuSecondsPerMillionRows: number[];
  medianConsumerCpuSecondsPerMillionRows: number;
  /** VmHWM of the consumer, per sample. */
  peakRssMiB: number[];
  medianPeakRssMiB: number;
  /** From spawn until the slot was active, per sample. */
  startupSeconds: (number | null)[];
};

/** `npm run bench -- --only-distribution`; written as JSON to bench/results/latest-only-distribution.json. */
export interface DistributionOnlyResults extends BenchSetup {
  distribution: DistributionComparisonResults;
}

/** Seconds of repeated runs, and their median. */
export interface SecondsSeries {
  seconds: number[];
  medianSeconds: number;
}

/** The freshness of a bulk load with the consumer running in one mode (FRESHNESS_MODES). */
export interface FreshnessModeResults {
  name: string;
  /** What the mode adds to the consumer's environment. */
  consumerEnv: Record<string, string>;
  /** COMMIT (psql's exit) → the last row's key readable in Redis. */
  commitToLastKey: SecondsSeries;
  /** The COPY with this consumer running. */
  copy: SecondsSeries;
  /** The COPY's median with the consumer to its median alone. */
  copySlowdown: number;
  /** The median COMMIT → last key to the floor's median. */
  toFloor: number;
  peakRssMiB: number[];
  consumerCpuSeconds: number[];
  /** The consumer's CPU while the COPY ran, per sample: what it took from the COPY and the walsender. */
  consumerCpuDuringCopySeconds: number[];
  /** WAL the walsender had not sent at psql's exit, per sample, in MiB: decoding left after COMMIT. */
  walNotSentAtCommitMiB: number[];
  /** COMMIT → the walsender had sent all WAL flushed at COMMIT, per sample: its decoding lag, part of COMMIT → last key. */
  commitToAllSentSeconds: number[];
  /** Shares (0 to 1) of the walsender's wait-event reads while the COPY ran, all samples pooled. */
  walsenderDuringCopy: Record<WalsenderActivity, number>;
  /** Redis's CPU from COMMIT to the last key, per sample: against the floor's, what Redis did beyond the SETs. */
  redisCpuSeconds: number[];
}

/** What users feel of a 1M-row COPY: how soon its rows are in Redis, and what the consumer costs the COPY. */
export interface FreshnessResults {
  /** Pause between two reads of the last key (plus a round trip: the resolution of COMMIT → last key). */
  pollIntervalMs: number;
  /** The same COPY, no consumer, no slot. */
  copyAlone: SecondsSeries;
  modes: FreshnessModeResults[];
  /** redis-cli --pipe of the consumer's SETs, pre-encoded, on one connection into an empty Redis. */
  floor: SecondsSeries & { respBytes: number; redisCpuSeconds: number[] };
}

/** `npm run bench -- --only-freshness`; written as JSON to bench/results/latest-only-freshness.json. */
export interface FreshnessOnlyResults extends BenchSetup {
  freshness: FreshnessResults;
}

/** Everything one run of the bench measured; written as JSON to bench/results/latest.json. */
export interface BenchResults extends BenchSetup {
  cliStartup: { seconds: number[]; medianSeconds: number };
  load: { psqlCopy: RateSeries; budgetCdcLoad: RateSeries; ratio: number };
  reference: RateSeries;
  /** budget-cdc's reader alone, no Redis (bench/drain-slot.ts): the ceiling of a consumer built on it. */
  readerAlone: RateSeries & {
    /** To pg_recvlogical's median rate. */
    ratio: number;
    /** From START_REPLICATION to the first row, per sample: the walsender decoding the whole transaction first. */
    firstRowSeconds: number[];
  };
  endToEnd: EndToEndResults;
  waitCost: WaitCostResults;
  cluster: ClusterComparisonResults;
  distribution: DistributionComparisonResults;
  freshness: FreshnessResults;
  latency: { commits: number; intervalMs: number; p50Ms: number; p99Ms: number; maxMs: number; samplesMs: number[] };
  /** The consumer catching up with one transaction of 5 × rows. */
  fiveTimes: { rows: number; seconds: number; rowsPerSecond: number; startupSeconds: number | null; peakRssMiB: number };
  targets: TargetResult[];
}

export function makeRateSeries(rows: number, seconds: number[]): RateSeries {
  const rowsPerSecond = seconds.map((s) => round(rows / s, 0));
  return { seconds: seconds.map((s) => round(s, 3)), rowsPerSecond, medianRowsPerSecond: median(rowsPerSecond) };
}

/** The end-to-end figures of `runs`, each over `rows` rows, their ratio taken to `reference`. */
export function makeEndToEndResults(
  rows: number,
  runs: readonly { seconds: number; startupSeconds: number | undefined; peakRssBytes: number }[],
  reference: RateSeries,
): EndToEndResults {
  const series = makeRateSeries(
    rows,
    runs.map((run) => run.seconds),
  );
  const peakRssMiB = runs.map((run) => toMiB(run.peakRssBytes));
  return {
    ...series,
    ratio: round(series.medianRowsPerSecond / reference.medianRowsPerSecond, 3),
    startupSeconds: runs.map((run) => (run.startupSeconds === undefined ? null : round(run.startupSeconds, 3))),
    peakRssMiB,
    medianPeakRssMiB: median(peakRssMiB),
  };
}

/** The rates of both settings, from the seconds of their runs, and their ratio. */
export function makeWaitCostResults(rows: number, wait0Seconds: number[], wait1Seconds: number[]): WaitCostResults {
  const [wait0, wait1] = [makeRateSeries(rows, wait0Seconds), makeRateSeries(rows, wait1Seconds)];
  return { replicas: 1, wait0, wait1, ratio: round(wait1.medianRowsPerSecond / wait0.medianRowsPerSecond, 3) };
}

/** The rates and CPU costs of the runs into each target, and the ratio of their rates. */
export function makeClusterComparisonResults(
  rows: number,
  masters: number,
  runs: { single: readonly CatchUpCost[]; cluster: readonly CatchUpCost[] },
): ClusterComparisonResults {
  const [single, cluster] = [makeSinkCostSeries(rows, runs.single), makeSinkCostSeries(rows, runs.cluster)];
  return { masters, single, cluster, ratio: round(cluster.medianRowsPerSecond / single.medianRowsPerSecond, 3) };
}

/** What makeClusterComparisonResults reads of a run (a CatchUpRun). */
interface CatchUpCost {
  seconds: number;
  startupSeconds: number | undefined;
  consumerCpuSeconds: number;
  redisCpuSeconds: number;
  redisCommands: { all: number; exec: number };
  keysPerMaster: number[];
}

function makeSinkCostSeries(rows: number, runs: readonly CatchUpCost[]): SinkCostSeries {
  const perMillionRows = (cpuSeconds: number) => round((cpuSeconds / rows) * MILLION, 3);
  const redisCpu = runs.map((run) => perMillionRows(run.redisCpuSeconds));
  const consumerCpu = runs.map((run) => perMillionRows(run.consumerCpuSeconds));
  return {
    ...makeRateSeries(
      rows,
      runs.map((run) => run.seconds),
    ),
    redisCpuSecondsPerMillionRows: redisCpu,
    medianRedisCpuSecondsPerMillionRows: median(redisCpu),
    consumerCpuSecondsPerMillionRows: consumerCpu,
    medianConsumerCpuSecondsPerMillionRows: median(consumerCpu),
    redisCommandsPerRow: runs.map((run) => round(run.redisCommands.all / rows, 3)),
    transactionsPerThousandRows: runs.map((run) => round((run.redisCommands.exec / rows) * 1000, 1)),
    startupSeconds: runs.map((run) => (run.startupSeconds === undefined ? null : round(run.startupSeconds, 3))),
    keysPerMaster: runs.map((run) => [...run.keysPerMaster]),
  };
}

/** The rates, CPU and memory of the runs with each budget rule, and the ratio of their rates. */
export function makeDistributionComparisonResults(
  rows: number,
  rule: string,
  runs: { builtIn: readonly DistributionRunCost[]; service: readonly (DistributionRunCost & { serviceCpuSeconds: number })[] },
): DistributionComparisonResults {
  const builtIn = makeDistributionCostSeries(rows, runs.builtIn);
  const serviceCpu = runs.service.map((run) => round((run.serviceCpuSeconds / rows) * MILLION, 3));
  const service = {
    ...makeDistributionCostSeries(rows, runs.service),
    serviceCpuSecondsPerMillionRows: serviceCpu,
    medianServiceCpuSecondsPerMillionRows: median(serviceCpu),
  };
  return { rule, builtIn, service, ratio: round(service.medianRowsPerSecond / builtIn.medianRowsPerSecond, 3) };
}

/** What makeDistributionComparisonResults reads of a run (a CatchUpRun). */
interface DistributionRunCost {
  seconds: number;
  startupSeconds: number | undefined;
  consumerCpuSeconds: number;
  peakRssBytes: number;
}

function makeDistributionCostSeries(rows: number, runs: readonly DistributionRunCost[]): DistributionCostSeries {
  const consumerCpu = runs.map((run) => round((run.consumerCpuSeconds / rows) * MILLION, 3));
  const peakRssMiB = runs.map((run) => toMiB(run.peakRssBytes));
  return {
    ...makeRateSeries(
      rows,
      runs.map((run) => run.seconds),
    ),
    consumerCpuSecondsPerMillionRows: consumerCpu,
    medianConsumerCpuSecondsPerMillionRows: median(consumerCpu),
    peakRssMiB,
    medianPeakRssMiB: median(peakRssMiB),
    startupSeconds: runs.map((run) => (run.startupSeconds === undefined ? null : round(run.startupSeconds, 3))),
  };
}

export function makeSecondsSeries(seconds: readonly number[]): SecondsSeries {
  return { seconds: seconds.map((s) => round(s, 3)), medianSeconds: round(median(seconds), 3) };
}

/** The freshness figures of measureFreshness's runs, each mode's ratios taken to the COPY alone and to the floor. */
export function makeFreshnessResults(
  runs: {
    copyAloneSeconds: number[];
    withConsumer: Map<string, readonly FreshnessRunCost[]>;
    floorSeconds: number[];
    floorRedisCpuSeconds: number[];
    floorBytes: number;
  },
  modes: readonly { name: string; consumerEnv: Record<string, string> }[],
  pollIntervalMs: number,
): FreshnessResults {
  const copyAlone = makeSecondsSeries(runs.copyAloneSeconds);
  const floor = {
    ...makeSecondsSeries(runs.floorSeconds),
    respBytes: runs.floorBytes,
    redisCpuSeconds: runs.floorRedisCpuSeconds.map((cpu) => round(cpu, 2)),
  };
  return {
    pollIntervalMs,
    copyAlone,
    modes: modes.map((mode) => {
      const modeRuns = runs.withConsumer.get(mode.name) ?? [];
      const commitToLastKey = makeSecondsSeries(modeRuns.map((run) => run.commitToLastKeySeconds));
      const copy = makeSecondsSeries(modeRuns.map((run) => run.copySeconds));
      return {
        name: mode.name,
        consumerEnv: mode.consumerEnv,
        commitToLastKey,
        copy,
        copySlowdown: round(copy.medianSeconds / copyAlone.medianSeconds, 3),
        toFloor: round(commitToLastKey.medianSeconds / floor.medianSeconds, 3),
        peakRssMiB: modeRuns.map((run) => toMiB(run.peakRssBytes)),
        consumerCpuSeconds: modeRuns.map((run) => round(run.consumerCpuSeconds, 2)),
        consumerCpuDuringCopySeconds: modeRuns.map((run) => round(run.consumerCpuDuringCopySeconds, 2)),
        walNotSentAtCommitMiB: modeRuns.map((run) => toMiB(run.walNotSentAtCommitBytes)),
        commitToAllSentSeconds: modeRuns.map((run) => round(run.commitToAllSentSeconds, 2)),
        walsenderDuringCopy: activityShares(modeRuns.map((run) => run.walsenderDuringCopy)),
        redisCpuSeconds: modeRuns.map((run) => round(run.redisCpuSeconds, 2)),
      };
    }),
    floor,
  };
}

/** What makeFreshnessResults reads of a run (a FreshnessRun). */
interface FreshnessRunCost {
  commitToLastKeySeconds: number;
  copySeconds: number;
  peakRssBytes: number;
  consumerCpuSeconds: number;
  consumerCpuDuringCopySeconds: number;
  walNotSentAtCommitBytes: number;
  commitToAllSentSeconds: number;
  walsenderDuringCopy: Record<WalsenderActivity, number>;
  redisCpuSeconds: number;
}

/** The runs' counts of walsender activities added up, as shares of all reads (0 to 1, rounded to 0.01). */
function activityShares(counts: Record<WalsenderActivity, number>[]): Record<WalsenderActivity, number> {
  const total: Record<WalsenderActivity, number> = { onCpu: 0, waitingForWal: 0, waitingForConsumer: 0, otherWait: 0 };
  for (const count of counts) for (const activity of WALSENDER_ACTIVITIES) total[activity] += count[activity];
  const reads = WALSENDER_ACTIVITIES.reduce((sum, activity) => sum + total[activity], 0);
  for (const activity of WALSENDER_ACTIVITIES) total[activity] = reads === 0 ? 0 : round(total[activity] / reads, 2);
  return total;
}

/**
 * The goals for freshness (≤ 1.2× the floor), the COPY's slowdown (≤ 15%) and the consumer's peak RSS
 * (≤ 128 MiB, the median of the samples like the other RSS lines), per mode, checked: three per mode, in that order.
 */
export function checkFreshnessTargets(freshness: FreshnessResults): TargetResult[] {
  return freshness.modes.flatMap((mode) => [
    {
      name: `COPY with the consumer (${mode.name}) / alone`,
      target: `≤ ${COPY_SLOWDOWN_TARGET.toFixed(2)}×`,
      value: mode.copySlowdown,
      pass: mode.copySlowdown <= COPY_SLOWDOWN_TARGET,
    },
    {
      name: `COMMIT → last key (${mode.name}) / floor`,
      target: `≤ ${FRESHNESS_TARGET.toFixed(2)}×`,
      value: mode.toFloor,
      pass: mode.toFloor <= FRESHNESS_TARGET,
    },
    {
      name: `consumer peak RSS, 1M-row COPY (${mode.name})`,
      target: `≤ ${PEAK_RSS_TARGET_MIB} MiB`,
      value: median(mode.peakRssMiB),
      pass: median(mode.peakRssMiB) <= PEAK_RSS_TARGET_MIB,
    },
  ]);
}

/** The goal for a distribution service, checked. */
export function checkDistributionTarget(distribution: DistributionComparisonResults): TargetResult {
  return {
    name: `distribution service (example, ${distribution.rule}) / built-in split`,
    target: `≥ ${DISTRIBUTION_RATE_TARGET.toFixed(2)}×`,
    value: distribution.ratio,
    pass: distribution.ratio >= DISTRIBUTION_RATE_TARGET,
  };
}

/** The goal for the cluster, checked. */
export function checkClusterTarget(cluster: ClusterComparisonResults): TargetResult {
  return {
    name: `Redis Cluster (${cluster.masters} masters) / single Redis`,
    target: `≥ ${CLUSTER_RATE_TARGET.toFixed(2)}×`,
    value: cluster.ratio,
    pass: cluster.ratio >= CLUSTER_RATE_TARGET,
  };
}

export function toMiB(bytes: number): number {
  return round(bytes / MIB, 1);
}

export function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

/** The targets of the issue: on this machine, medians of the samples, all from the same run. */
export function checkTargets(results: Omit<BenchResults, 'targets'>): TargetResult[] {
  const peakRss = (rows: number) => `peak RSS, ${rows.toLocaleString('en-US')}-row transaction`;
  return [
    { name: 'end to end / pg_recvlogical', target: '≥ 1.20×', value: results.endToEnd.ratio, pass: results.endToEnd.ratio >= 1.2 },
    { name: 'budget-cdc load / psql \\copy', target: '≥ 0.90×', value: results.load.ratio, pass: results.load.ratio >= 0.9 },
    { name: 'latency p99', target: '≤ 10 ms', value: results.latency.p99Ms, pass: results.latency.p99Ms <= 10 },
    {
      name: peakRss(results.rows),
      target: '≤ 128 MiB',
      value: results.endToEnd.medianPeakRssMiB,
      pass: results.endToEnd.medianPeakRssMiB <= PEAK_RSS_TARGET_MIB,
    },
    {
      name: peakRss(results.fiveTimes.rows),
      target: '≤ 128 MiB',
      value: results.fiveTimes.peakRssMiB,
      pass: results.fiveTimes.peakRssMiB <= PEAK_RSS_TARGET_MIB,
    },
    checkClusterTarget(results.cluster),
    checkDistributionTarget(results.distribution),
    ...checkFreshnessTargets(results.freshness),
  ];
}
