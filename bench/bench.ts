// npm run bench [-- --rows N] [--runs N] [--only-wait | --only-e2e | --only-cluster | --only-distribution | --only-freshness]
// Throughput, latency and memory of budget-cdc against psql \copy and pg_recvlogical, on a throwaway
// PostgreSQL and Redis (issue 4), the cost of WAIT (--redis-min-replicas 1) with a replica attached, and the
// rate into a 3-master Redis Cluster against the single Redis (issue 12), and the rate with the example
// distribution service (even rule, HTTP on loopback) against the built-in even split (issue 14), and what users
// feel of a bulk load: COMMIT → last key in Redis against Redis's own floor, and the COPY's slowdown (issue 15).
// Progress on stderr; the table on stdout; the figures in bench/results/latest.json (latest-only-wait.json,
// latest-only-e2e.json, latest-only-cluster.json, latest-only-distribution.json, latest-only-freshness.json).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import { killBenchChildren } from './bench-child.js';
import type { BenchContext } from './bench-context.js';
import {
  checkTargets,
  makeClusterComparisonResults,
  makeDistributionComparisonResults,
  makeEndToEndResults,
  makeFreshnessResults,
  makeRateSeries,
  makeWaitCostResults,
  round,
  toMiB,
  type BenchResults,
  type BenchSetup,
  type ClusterOnlyResults,
  type DistributionOnlyResults,
  type EndToEndOnlyResults,
  type FreshnessOnlyResults,
  type FreshnessResults,
  type WaitOnlyResults,
} from './bench-results.js';
import { serverVersion, withPgClient } from './bench-sql.js';
import { writeJobsCsv } from './jobs-csv.js';
import { describeCatchUp, measureCatchUp, type CatchUpRun } from './measure-catch-up.js';
import { measureCliStartup } from './measure-cli-startup.js';
import { measureDistributionComparison, SERVICE_RULE } from './measure-distribution-comparison.js';
import { CLUSTER_MASTERS, measureClusterComparison } from './measure-cluster-comparison.js';
import { measureEndToEnd } from './measure-end-to-end.js';
import { FRESHNESS_MODES, LAST_KEY_POLL_MS, measureFreshness } from './measure-freshness.js';
import { measureLatency } from './measure-latency.js';
import { measureLoad } from './measure-load.js';
import { measureReaderAlone } from './measure-reader-alone.js';
import { measureRecvlogical } from './measure-recvlogical.js';
import { measureWaitCost } from './measure-wait-cost.js';
import { psqlCopyGenerated } from './postgres-programs.js';
import {
  formatClusterOnlyTable,
  formatDistributionOnlyTable,
  formatEndToEndOnlyTable,
  formatFreshnessOnlyTable,
  formatResultsTable,
  formatWaitOnlyTable,
} from './results-table.js';
import { median, percentile, rowsPerSecond } from './stats.js';

const SECOND = 1000;
const DEFAULT_ROWS = 1_000_000;
const DEFAULT_SAMPLES = 3;
const LATENCY_COMMITS = 1000;
const LATENCY_INTERVAL_MS = 5;
/** The memory target is checked at `rows` and at this many times `rows`, in one transaction. */
const LARGE_TRANSACTION_FACTOR = 5;
const RESULTS_PATH = fileURLToPath(new URL('./results/latest.json', import.meta.url));
// Their own files, so that a quick --only-* run leaves the last full run's figures in place.
const WAIT_ONLY_RESULTS_PATH = fileURLToPath(new URL('./results/latest-only-wait.json', import.meta.url));
const END_TO_END_ONLY_RESULTS_PATH = fileURLToPath(new URL('./results/latest-only-e2e.json', import.meta.url));
const CLUSTER_ONLY_RESULTS_PATH = fileURLToPath(new URL('./results/latest-only-cluster.json', import.meta.url));
const DISTRIBUTION_ONLY_RESULTS_PATH = fileURLToPath(new URL('./results/latest-only-distribution.json', import.meta.url));
const FRESHNESS_ONLY_RESULTS_PATH = fileURLToPath(new URL('./results/latest-only-freshness.json', import.meta.url));
const EXIT_INTERRUPTED = 130;
const EXIT_USAGE = 2;
const USAGE =
  'usage: npm run bench [-- --rows N] [--runs N] [--only-wait | --only-e2e | --only-cluster | --only-distribution |\n' +
  '                      --only-freshness]\n' +
  '       --rows: rows per load, default 1000000; the memory check also uses 5 N\n' +
  '       --runs: samples of each measurement, medians reported; default 3\n' +
  '       --only-wait: only end to end with 1 replica, BUDGET_CDC_REDIS_MIN_REPLICAS 0 and 1 alternated\n' +
  '       --only-e2e: only end to end (budget-cdc run) and its pg_recvlogical reference, alternated\n' +
  '       --only-cluster: only end to end into the single Redis and into a 3-master Redis Cluster, alternated\n' +
  '       --only-distribution: only end to end with the built-in even split and with the example distribution\n' +
  '                            service (even rule, HTTP on loopback), alternated\n' +
  '       --only-freshness: only COMMIT → last key of a COPY with the consumer running, the COPY alone, and the\n' +
  '                         floor (redis-cli --pipe of the same SETs), alternated\n';

// The tests' settings (wal_level=logical, fsync=off, …) plus what a clean measurement needs.
const POSTGRES_SETTINGS: Record<string, string> = {
  // No checkpoint in the middle of a measurement: a 5N-row load writes far less WAL, and no timer fires.
  max_wal_size: '32GB',
  checkpoint_timeout: '1d',
  // A commit returns once its WAL is flushed, as in production, and the walsender sends it at once. The tests'
  // synchronous_commit=off would leave each single-row commit waiting for the WAL writer (wal_writer_delay).
  synchronous_commit: 'on',
  // Autovacuum of a freshly loaded table writes WAL that the walsender would read in the middle of a measurement.
  autovacuum: 'off',
  // The default, stated: larger transactions spill to disk in the walsender, as they would in production.
  logical_decoding_work_mem: '64MB',
};

const startedAt = performance.now();
function log(line: string): void {
  const elapsed = ((performance.now() - startedAt) / SECOND).toFixed(1).padStart(6);
  process.stderr.write(`[${elapsed} s] ${line}\n`);
}

/** The command line: `--rows N`, `--runs N`, and at most one `--only-*`. */
interface BenchOptions {
  rows: number;
  /** Samples of each measurement. */
  samples: number;
  onlyWait: boolean;
  onlyEndToEnd: boolean;
  onlyCluster: boolean;
  onlyDistribution: boolean;
  onlyFreshness: boolean;
}

function parseOptions(): BenchOptions {
  let values: {
    rows: string;
    runs: string;
    'only-wait': boolean;
    'only-e2e': boolean;
    'only-cluster': boolean;
    'only-distribution': boolean;
    'only-freshness': boolean;
  };
  try {
    ({ values } = parseArgs({
      options: {
        rows: { type: 'string', default: String(DEFAULT_ROWS) },
        runs: { type: 'string', default: String(DEFAULT_SAMPLES) },
        'only-wait': { type: 'boolean', default: false },
        'only-e2e': { type: 'boolean', default: false },
        'only-cluster': { type: 'boolean', default: false },
        'only-distribution': { type: 'boolean', default: false },
        'only-freshness': { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    usageError((error as Error).message);
  }
  const only = [values['only-wait'], values['only-e2e'], values['only-cluster'], values['only-distribution'], values['only-freshness']];
  if (only.filter(Boolean).length > 1) {
    usageError('--only-wait, --only-e2e, --only-cluster, --only-distribution and --only-freshness exclude each other');
  }
  return {
    rows: positiveInteger('--rows', values.rows),
    samples: positiveInteger('--runs', values.runs),
    onlyWait: values['only-wait'],
    onlyEndToEnd: values['only-e2e'],
    onlyCluster: values['only-cluster'],
    onlyDistribution: values['only-distribution'],
    onlyFreshness: values['only-freshness'],
  };
}

function positiveInteger(flag: string, text: string): number {
  const value = /^[1-9]\d*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) usageError(`${flag} must be a positive integer, got "${text}"`);
  return value;
}

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

const { rows, samples, onlyWait, onlyEndToEnd, onlyCluster, onlyDistribution, onlyFreshness } = parseOptions();
let postgres: PostgresServer | undefined;
let redisServer: RedisServer | undefined;
let redis: Redis | undefined;
let workDir: string | undefined;
let cleaning: Promise<void> | undefined;

/** Kills the subprocesses, stops both servers and removes the CSV; once, whoever asks first. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    killBenchChildren();
    redis?.disconnect();
    await Promise.allSettled([postgres?.stop(), redisServer?.stop(), workDir && rm(workDir, { recursive: true, force: true })]);
  })();
  return cleaning;
}

let interrupted = false;
function onSignal(signal: NodeJS.Signals): void {
  interrupted = true;
  log(`${signal}: stopping the subprocesses and servers`);
  void cleanUp().finally(() => process.exit(EXIT_INTERRUPTED));
}
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

try {
  log(`starting PostgreSQL and Redis; ${rows.toLocaleString('en-US')} rows, ${samples} samples per measurement`);
  postgres = await startPostgres({ extraSettings: POSTGRES_SETTINGS });
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  workDir = await mkdtemp(join(tmpdir(), 'budget-cdc-bench-'));
  const context: BenchContext = {
    adminUrl: postgres.url,
    redisUrl: redisServer.url,
    redis,
    rows,
    csvPath: join(workDir, 'jobs.csv'),
    log,
  };
  if (onlyWait) {
    const results = await runWaitOnly(context);
    await report(formatWaitOnlyTable(results), results, WAIT_ONLY_RESULTS_PATH);
  } else if (onlyEndToEnd) {
    const results = await runEndToEndOnly(context);
    await report(formatEndToEndOnlyTable(results), results, END_TO_END_ONLY_RESULTS_PATH);
  } else if (onlyCluster) {
    const results = await runClusterOnly(context);
    await report(formatClusterOnlyTable(results), results, CLUSTER_ONLY_RESULTS_PATH);
  } else if (onlyDistribution) {
    const results = await runDistributionOnly(context);
    await report(formatDistributionOnlyTable(results), results, DISTRIBUTION_ONLY_RESULTS_PATH);
  } else if (onlyFreshness) {
    const results = await runFreshnessOnly(context);
    await report(formatFreshnessOnlyTable(results), results, FRESHNESS_ONLY_RESULTS_PATH);
  } else {
    const results = await runBench(context);
    await report(formatResultsTable(results), results, RESULTS_PATH);
  }
} catch (error) {
  if (!interrupted) {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  }
} finally {
  await cleanUp();
}

/** Prints the table on stdout and writes the figures as JSON to `path`. */
async function report(table: string, results: BenchSetup, path: string): Promise<void> {
  await writeFile(path, JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(table + '\n');
  log(`figures written to ${path}`);
}

/** `--only-wait`: the cost of WAIT, alone. */
async function runWaitOnly(context: BenchContext): Promise<WaitOnlyResults> {
  log(`writing ${rows.toLocaleString('en-US')} rows to ${context.csvPath}`);
  await writeJobsCsv(context.csvPath, rows);
  const waitCost = await measureWaitCost(context, samples);
  return { ...(await describeSetup(context)), waitCost: makeWaitCostResults(rows, seconds(waitCost.wait0), seconds(waitCost.wait1)) };
}

/** `--only-e2e`: end to end and its pg_recvlogical reference, alternated sample by sample. */
async function runEndToEndOnly(context: BenchContext): Promise<EndToEndOnlyResults> {
  log(`writing ${rows.toLocaleString('en-US')} rows to ${context.csvPath}`);
  await writeJobsCsv(context.csvPath, rows);
  const reference: number[] = [];
  const endToEnd: CatchUpRun[] = [];
  for (let sample = 1; sample <= samples; sample++) {
    const seconds = await measureRecvlogical(context);
    reference.push(seconds);
    log(`pg_recvlogical ${sample}/${samples}: ${seconds.toFixed(2)} s, ${rowsPerSecond(rows, seconds)}`);
    const run = await measureEndToEnd(context);
    endToEnd.push(run);
    log(`end to end ${sample}/${samples}: ${describeCatchUp(run)}`);
  }
  const referenceSeries = makeRateSeries(rows, reference);
  return {
    ...(await describeSetup(context)),
    reference: referenceSeries,
    endToEnd: makeEndToEndResults(rows, endToEnd, referenceSeries),
  };
}

/** `--only-cluster`: end to end into the single Redis and into the Redis Cluster, alternated sample by sample. */
async function runClusterOnly(context: BenchContext): Promise<ClusterOnlyResults> {
  log(`writing ${rows.toLocaleString('en-US')} rows to ${context.csvPath}`);
  await writeJobsCsv(context.csvPath, rows);
  const runs = await measureClusterComparison(context, samples);
  return { ...(await describeSetup(context)), cluster: makeClusterComparisonResults(rows, CLUSTER_MASTERS, runs) };
}

/** `--only-distribution`: end to end with the built-in even split and with the example service, alternated sample by sample. */
async function runDistributionOnly(context: BenchContext): Promise<DistributionOnlyResults> {
  log(`writing ${rows.toLocaleString('en-US')} rows to ${context.csvPath}`);
  await writeJobsCsv(context.csvPath, rows);
  const runs = await measureDistributionComparison(context, samples);
  return { ...(await describeSetup(context)), distribution: makeDistributionComparisonResults(rows, SERVICE_RULE, runs) };
}

/** `--only-freshness`: COMMIT → last key, the COPY alone and with the consumer, and the floor, alternated sample by sample. */
async function runFreshnessOnly(context: BenchContext): Promise<FreshnessOnlyResults> {
  log(`writing ${rows.toLocaleString('en-US')} rows to ${context.csvPath}`);
  await writeJobsCsv(context.csvPath, rows);
  return { ...(await describeSetup(context)), freshness: await measureFreshnessResults(context) };
}

async function measureFreshnessResults(context: BenchContext): Promise<FreshnessResults> {
  const runs = await measureFreshness(context, samples, FRESHNESS_MODES);
  return makeFreshnessResults(runs, FRESHNESS_MODES, LAST_KEY_POLL_MS);
}

async function runBench(context: BenchContext): Promise<BenchResults> {
  log(`writing ${rows.toLocaleString('en-US')} rows to ${context.csvPath}`);
  await writeJobsCsv(context.csvPath, rows);

  const cliStartup: number[] = [];
  for (let i = 0; i < samples; i++) cliStartup.push(await measureCliStartup());
  log(`CLI start-up (budget-cdc --help): ${cliStartup.map((s) => s.toFixed(2)).join(', ')} s`);

  const load = await measureLoad(context, samples);

  const reference: number[] = [];
  for (let sample = 1; sample <= samples; sample++) {
    const seconds = await measureRecvlogical(context);
    reference.push(seconds);
    log(`pg_recvlogical ${sample}/${samples}: ${seconds.toFixed(2)} s, ${rowsPerSecond(rows, seconds)}`);
  }

  const readerAlone: Awaited<ReturnType<typeof measureReaderAlone>>[] = [];
  for (let sample = 1; sample <= samples; sample++) {
    const run = await measureReaderAlone(context);
    readerAlone.push(run);
    log(
      `reader alone ${sample}/${samples}: ${run.seconds.toFixed(2)} s, ${rowsPerSecond(rows, run.seconds)}, first row after ${(run.firstRowMs / SECOND).toFixed(2)} s`,
    );
  }

  const endToEnd: CatchUpRun[] = [];
  for (let sample = 1; sample <= samples; sample++) {
    const run = await measureEndToEnd(context);
    endToEnd.push(run);
    log(`end to end ${sample}/${samples}: ${describeCatchUp(run)}`);
  }

  const waitCost = await measureWaitCost(context, samples);
  const cluster = await measureClusterComparison(context, samples);
  const distribution = await measureDistributionComparison(context, samples);
  const freshness = await measureFreshnessResults(context);

  log(`latency: ${LATENCY_COMMITS} single-row commits, one every ${LATENCY_INTERVAL_MS} ms`);
  const latencies = await measureLatency(context, { commits: LATENCY_COMMITS, intervalMs: LATENCY_INTERVAL_MS });
  const latency = {
    commits: LATENCY_COMMITS,
    intervalMs: LATENCY_INTERVAL_MS,
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    maxMs: round(Math.max(...latencies), 2),
    samplesMs: latencies.map((ms) => round(ms, 3)),
  };
  log(`latency: p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms`);

  const largeRows = rows * LARGE_TRANSACTION_FACTOR;
  log(`memory: one transaction of ${largeRows.toLocaleString('en-US')} rows`);
  const large = await measureCatchUp(context, {
    purpose: 'large',
    rows: largeRows,
    fill: async (databaseUrl) => {
      await psqlCopyGenerated(databaseUrl, largeRows);
      log(`memory: ${largeRows.toLocaleString('en-US')} rows committed; starting the consumer`);
    },
  });
  log(`memory: ${describeCatchUp(large)}`);

  const loadSeries = { psqlCopy: makeRateSeries(rows, load['psql \\copy']), budgetCdcLoad: makeRateSeries(rows, load['budget-cdc load']) };
  const referenceSeries = makeRateSeries(rows, reference);
  const readerAloneSeries = makeRateSeries(rows, seconds(readerAlone));
  const measured: Omit<BenchResults, 'targets'> = {
    ...(await describeSetup(context)),
    cliStartup: { seconds: cliStartup.map((s) => round(s, 3)), medianSeconds: round(median(cliStartup), 3) },
    load: {
      ...loadSeries,
      ratio: round(loadSeries.budgetCdcLoad.medianRowsPerSecond / loadSeries.psqlCopy.medianRowsPerSecond, 3),
    },
    reference: referenceSeries,
    readerAlone: {
      ...readerAloneSeries,
      ratio: round(readerAloneSeries.medianRowsPerSecond / referenceSeries.medianRowsPerSecond, 3),
      firstRowSeconds: readerAlone.map((run) => round(run.firstRowMs / SECOND, 3)),
    },
    endToEnd: makeEndToEndResults(rows, endToEnd, referenceSeries),
    waitCost: makeWaitCostResults(rows, seconds(waitCost.wait0), seconds(waitCost.wait1)),
    cluster: makeClusterComparisonResults(rows, CLUSTER_MASTERS, cluster),
    distribution: makeDistributionComparisonResults(rows, SERVICE_RULE, distribution),
    freshness,
    latency,
    fiveTimes: {
      rows: largeRows,
      seconds: round(large.seconds, 3),
      rowsPerSecond: round(largeRows / large.seconds, 0),
      startupSeconds: large.startupSeconds === undefined ? null : round(large.startupSeconds, 3),
      peakRssMiB: toMiB(large.peakRssBytes),
    },
  };
  return { ...measured, targets: checkTargets(measured) };
}

/** The seconds of each run, in order. */
function seconds(runs: readonly { seconds: number }[]): number[] {
  return runs.map((run) => run.seconds);
}

/** The machine, the servers' versions and the commit, dated now. */
async function describeSetup(context: BenchContext): Promise<BenchSetup> {
  const [postgresVersion, redisInfo] = await Promise.all([withPgClient(context.adminUrl, serverVersion), context.redis.info('server')]);
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    ...gitCommit(),
    rows,
    samples,
    postgres: { version: postgresVersion, settings: POSTGRES_SETTINGS },
    redis: { version: /^redis_version:(.+)$/m.exec(redisInfo)?.[1]?.trim() ?? 'unknown' },
  };
}

/** The checked-out commit, read only, and whether tracked files differ from it; undefined outside a git checkout. */
function gitCommit(): { commit: string | undefined; modified: boolean | undefined } {
  const git = (...args: string[]): string => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), modified: git('status', '--porcelain', '--untracked-files=no') !== '' };
  } catch {
    return { commit: undefined, modified: undefined };
  }
}
