import {
  checkClusterTarget,
  checkDistributionTarget,
  checkFreshnessTargets,
  type BenchResults,
  type BenchSetup,
  type ClusterComparisonResults,
  type ClusterOnlyResults,
  type DistributionComparisonResults,
  type DistributionCostSeries,
  type DistributionOnlyResults,
  type EndToEndOnlyResults,
  type FreshnessOnlyResults,
  type FreshnessResults,
  type RateSeries,
  type SinkCostSeries,
  type TargetResult,
  type WaitCostResults,
  type WaitOnlyResults,
} from './bench-results.js';
import type { WalsenderActivity } from './bench-sql.js';
import { formatInteger, median } from './stats.js';

const COLUMN_GAP = '   ';
const HEADER = ['measure', 'median', 'samples', 'target', 'result'];

/** The figures of one run as an aligned plain-text table, targets marked PASS or FAIL. */
export function formatResultsTable(results: BenchResults): string {
  const [endToEnd, load, latency, peakRss, peakRssFiveTimes, cluster, distribution, ...freshness] = results.targets as [
    TargetResult,
    TargetResult,
    TargetResult,
    TargetResult,
    TargetResult,
    TargetResult,
    TargetResult,
    ...TargetResult[],
  ];
  const { latency: l, endToEnd: e, fiveTimes: f, readerAlone: r } = results;
  const rows: string[][] = [
    HEADER,
    ['load: psql \\copy', rate(results.load.psqlCopy), samples(results.load.psqlCopy), '', ''],
    [
      'load: budget-cdc load',
      rate(results.load.budgetCdcLoad),
      samples(results.load.budgetCdcLoad),
      '≥ 0.90× psql \\copy',
      mark(load, '×'),
    ],
    ['reference: pg_recvlogical', rate(results.reference), samples(results.reference), '', ''],
    ['ceiling: our reader alone, no Redis', rate(r), samples(r), '', `${r.ratio.toFixed(2)}× pg_recvlogical`],
    ['  of it, START → first row', seconds(r.firstRowSeconds), r.firstRowSeconds.map((s) => s.toFixed(2)).join('  '), '', ''],
    ['end to end: budget-cdc run', rate(e), samples(e), '≥ 1.20× pg_recvlogical', mark(endToEnd, '×')],
    [
      '  of it, spawn → slot active',
      seconds(e.startupSeconds),
      e.startupSeconds.map((s) => (s === null ? '?' : s.toFixed(2))).join('  '),
      '',
      '',
    ],
    ...waitCostRows(results.waitCost),
    ...clusterRows(results.cluster, cluster),
    ...distributionRows(results.distribution, distribution),
    ...freshnessRows(results.freshness, freshness),
    [
      'latency: COMMIT → key in Redis',
      `p99 ${l.p99Ms.toFixed(1)} ms`,
      `p50 ${l.p50Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms, ${formatInteger(l.commits)} commits`,
      'p99 ≤ 10 ms',
      mark(latency, ' ms'),
    ],
    [
      `peak RSS: ${formatInteger(results.rows)}-row transaction`,
      `${e.medianPeakRssMiB.toFixed(1)} MiB`,
      e.peakRssMiB.map((m) => m.toFixed(1)).join('  '),
      '≤ 128 MiB',
      mark(peakRss, ' MiB'),
    ],
    [
      `peak RSS: ${formatInteger(f.rows)}-row transaction`,
      `${f.peakRssMiB.toFixed(1)} MiB`,
      `one run, ${formatInteger(f.rowsPerSecond)} rows/s`,
      '≤ 128 MiB',
      mark(peakRssFiveTimes, ' MiB'),
    ],
    [
      'CLI start-up: budget-cdc --help',
      seconds([results.cliStartup.medianSeconds]),
      results.cliStartup.seconds.map((s) => s.toFixed(2)).join('  '),
      '',
      '',
    ],
  ];
  return formatTable(results, rows);
}

/** End to end and its pg_recvlogical reference alone (`--only-e2e`), in the same table format. */
export function formatEndToEndOnlyTable(results: EndToEndOnlyResults): string {
  const { endToEnd: e } = results;
  return formatTable(results, [
    HEADER,
    ['reference: pg_recvlogical', rate(results.reference), samples(results.reference), '', ''],
    ['end to end: budget-cdc run', rate(e), samples(e), '', `${e.ratio.toFixed(2)}× pg_recvlogical`],
    [
      '  of it, spawn → slot active',
      seconds(e.startupSeconds),
      e.startupSeconds.map((s) => (s === null ? '?' : s.toFixed(2))).join('  '),
      '',
      '',
    ],
    [
      `peak RSS: ${formatInteger(results.rows)}-row transaction`,
      `${e.medianPeakRssMiB.toFixed(1)} MiB`,
      e.peakRssMiB.map((m) => m.toFixed(1)).join('  '),
      '',
      '',
    ],
  ]);
}

/** The cost of WAIT alone (`--only-wait`), in the same table format. */
export function formatWaitOnlyTable(results: WaitOnlyResults): string {
  return formatTable(results, [HEADER, ...waitCostRows(results.waitCost)]);
}

/** The single Redis against the Redis Cluster alone (`--only-cluster`), in the same table format. */
export function formatClusterOnlyTable(results: ClusterOnlyResults): string {
  return formatTable(results, [HEADER, ...clusterRows(results.cluster, checkClusterTarget(results.cluster))]);
}

/** The built-in even split against the example distribution service alone (`--only-distribution`), in the same table format. */
export function formatDistributionOnlyTable(results: DistributionOnlyResults): string {
  return formatTable(results, [HEADER, ...distributionRows(results.distribution, checkDistributionTarget(results.distribution))]);
}

/** Freshness and the COPY's slowdown alone (`--only-freshness`), in the same table format. */
export function formatFreshnessOnlyTable(results: FreshnessOnlyResults): string {
  return formatTable(results, [HEADER, ...freshnessRows(results.freshness, checkFreshnessTargets(results.freshness))]);
}

/** `targets`: checkFreshnessTargets of `f`, three per mode in its order (COPY slowdown, freshness, peak RSS). */
function freshnessRows(f: FreshnessResults, targets: readonly TargetResult[]): string[][] {
  const series = (values: readonly number[]): string => values.map((s) => s.toFixed(2)).join('  ');
  return [
    ['COPY alone: psql \\copy, no consumer', seconds([f.copyAlone.medianSeconds]), series(f.copyAlone.seconds), '', ''],
    ...f.modes.flatMap((mode, index) => [
      [
        `COPY with the consumer running (${mode.name})`,
        seconds([mode.copy.medianSeconds]),
        series(mode.copy.seconds),
        `${targets[3 * index]!.target} alone`,
        mark(targets[3 * index]!, '×'),
      ],
      [
        `freshness: COMMIT → last key (${mode.name})`,
        seconds([mode.commitToLastKey.medianSeconds]),
        series(mode.commitToLastKey.seconds),
        `${targets[3 * index + 1]!.target} floor`,
        mark(targets[3 * index + 1]!, '×'),
      ],
      [
        '  consumer peak RSS',
        `${median(mode.peakRssMiB).toFixed(1)} MiB`,
        mode.peakRssMiB.map((mib) => mib.toFixed(1)).join('  '),
        targets[3 * index + 2]!.target,
        mark(targets[3 * index + 2]!, ' MiB'),
      ],
      [
        '  consumer CPU over the COPY and after',
        `${median(mode.consumerCpuSeconds).toFixed(2)} s`,
        series(mode.consumerCpuSeconds),
        '',
        '',
      ],
      [
        '    of which while the COPY ran',
        `${median(mode.consumerCpuDuringCopySeconds).toFixed(2)} s`,
        series(mode.consumerCpuDuringCopySeconds),
        '',
        '',
      ],
      ['  WAL not sent yet at COMMIT', `${median(mode.walNotSentAtCommitMiB).toFixed(1)} MiB`, series(mode.walNotSentAtCommitMiB), '', ''],
      [
        '  COMMIT → walsender sent all of it',
        `${median(mode.commitToAllSentSeconds).toFixed(2)} s`,
        series(mode.commitToAllSentSeconds),
        '',
        '',
      ],
      ['  walsender while the COPY ran', '', walsenderActivityText(mode.walsenderDuringCopy), '', ''],
      ['  Redis CPU, COMMIT → last key', `${median(mode.redisCpuSeconds).toFixed(2)} s`, series(mode.redisCpuSeconds), '', ''],
    ]),
    [
      'floor: redis-cli --pipe, same SETs pre-encoded',
      seconds([f.floor.medianSeconds]),
      series(f.floor.seconds),
      '',
      `${formatInteger(f.floor.respBytes / (1024 * 1024))} MiB of RESP`,
    ],
    ['  Redis CPU over the floor', `${median(f.floor.redisCpuSeconds).toFixed(2)} s`, series(f.floor.redisCpuSeconds), '', ''],
    ['  resolution of COMMIT → last key', '', `psql's exit; the last key read every ${f.pollIntervalMs} ms`, '', ''],
  ];
}

function distributionRows(d: DistributionComparisonResults, target: TargetResult): string[][] {
  const costRows = (series: DistributionCostSeries): string[][] => [
    [
      '  consumer CPU per 1M rows',
      `${series.medianConsumerCpuSecondsPerMillionRows.toFixed(2)} s`,
      series.consumerCpuSecondsPerMillionRows.map((s) => s.toFixed(2)).join('  '),
      '',
      '',
    ],
    ['  consumer peak RSS', `${series.medianPeakRssMiB.toFixed(1)} MiB`, series.peakRssMiB.map((m) => m.toFixed(1)).join('  '), '', ''],
  ];
  return [
    ['end to end, built-in even split', rate(d.builtIn), samples(d.builtIn), '', ''],
    ...costRows(d.builtIn),
    [
      `end to end, distribution service (${d.rule}, HTTP)`,
      rate(d.service),
      samples(d.service),
      `${target.target} built-in`,
      mark(target, '×'),
    ],
    ...costRows(d.service),
    [
      '  service CPU per 1M rows',
      `${d.service.medianServiceCpuSecondsPerMillionRows.toFixed(2)} s`,
      d.service.serviceCpuSecondsPerMillionRows.map((s) => s.toFixed(2)).join('  '),
      '',
      '',
    ],
  ];
}

function clusterRows(c: ClusterComparisonResults, target: TargetResult): string[][] {
  const costRows = (series: SinkCostSeries, redis: string): string[][] => [
    [
      '  of it, spawn → slot active',
      seconds(series.startupSeconds),
      series.startupSeconds.map((s) => (s === null ? '?' : s.toFixed(2))).join('  '),
      '',
      '',
    ],
    [
      `  ${redis} CPU per 1M rows`,
      `${series.medianRedisCpuSecondsPerMillionRows.toFixed(2)} s`,
      series.redisCpuSecondsPerMillionRows.map((s) => s.toFixed(2)).join('  '),
      '',
      '',
    ],
    [
      '  Redis commands per row',
      median(series.redisCommandsPerRow).toFixed(2),
      series.redisCommandsPerRow.map((n) => n.toFixed(2)).join('  '),
      '',
      `EXEC per 1,000 rows: ${median(series.transactionsPerThousandRows).toFixed(1)}`,
    ],
    [
      '  consumer CPU per 1M rows',
      `${series.medianConsumerCpuSecondsPerMillionRows.toFixed(2)} s`,
      series.consumerCpuSecondsPerMillionRows.map((s) => s.toFixed(2)).join('  '),
      '',
      '',
    ],
  ];
  return [
    ['end to end, single Redis', rate(c.single), samples(c.single), '', ''],
    ...costRows(c.single, 'Redis'),
    [
      `end to end, Redis Cluster, ${c.masters} masters`,
      rate(c.cluster),
      samples(c.cluster),
      `${target.target} single Redis`,
      mark(target, '×'),
    ],
    ...costRows(c.cluster, `Redis (${c.masters} masters summed)`),
  ];
}

function waitCostRows(w: WaitCostResults): string[][] {
  const replicas = `${w.replicas} replica${w.replicas === 1 ? '' : 's'}`;
  return [
    [`end to end, ${replicas}, WAIT 0`, rate(w.wait0), samples(w.wait0), '', ''],
    [`end to end, ${replicas}, WAIT ${w.replicas}`, rate(w.wait1), samples(w.wait1), '', `×${w.ratio.toFixed(2)} of WAIT 0`],
  ];
}

/** Aligned columns under a title line that says what the run ran on. */
function formatTable(setup: BenchSetup, rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join(COLUMN_GAP)
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((width) => '-'.repeat(width)).join(COLUMN_GAP));
  const commit =
    setup.commit === undefined ? '' : `, commit ${setup.commit.slice(0, 7)}${setup.modified === true ? ' with uncommitted changes' : ''}`;
  const title =
    `budget-cdc bench: ${formatInteger(setup.rows)} rows, medians of ${setup.samples}, ${setup.date}, ` +
    `node ${setup.node}, ${setup.cpus} CPUs (${setup.cpuModel}), PostgreSQL ${setup.postgres.version}, ` +
    `Redis ${setup.redis.version}${commit}`;
  return [title, '', ...lines].join('\n');
}

function rate(series: RateSeries): string {
  return `${formatInteger(series.medianRowsPerSecond)} rows/s`;
}

function samples(series: RateSeries): string {
  return series.rowsPerSecond.map(formatInteger).join('  ');
}

/** The median of the known values, in seconds. */
function seconds(values: (number | null)[]): string {
  const known = values.filter((value): value is number => value !== null);
  return known.length === 0 ? '?' : `${median(known).toFixed(2)} s`;
}

function mark(target: TargetResult, unit: string): string {
  const value = unit === '×' ? target.value.toFixed(2) : target.value.toFixed(1);
  return `${target.pass ? 'PASS' : 'FAIL'} (${value}${unit})`;
}

/**
 * The walsender's shares of time while the COPY ran, as read from pg_stat_activity: no wait event means it was on a
 * CPU or queued for one (the two cores are shared with the COPY's backend and the consumer).
 */
function walsenderActivityText(shares: Record<WalsenderActivity, number>): string {
  const percent = (share: number): string => `${Math.round(share * 100)}%`;
  return (
    `on CPU or queued for it ${percent(shares.onCpu)}, waiting for WAL ${percent(shares.waitingForWal)}, ` +
    `for the consumer ${percent(shares.waitingForConsumer)}, other ${percent(shares.otherWait)}`
  );
}
