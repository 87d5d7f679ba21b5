import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { freePort, killLiveCliProcesses, linesOf, startCli, type CliProcess, stopCli } from '../support/cli-process.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { waitFor } from '../support/wait-for.js';

// docs/grafana/budget-cdc.json and docs/prometheus/alerts.yml name metrics by hand: a renamed or removed metric
// leaves a panel empty or an alert that never fires, silently. Every budget_cdc_ name they use must be in the
// /metrics of a running consumer, and the freshness histogram must have observations once rows went through.

const SECOND = 1000;
const STOP_TIMEOUT_MS = 10 * SECOND;
const DASHBOARD_PATH = new URL('../../docs/grafana/budget-cdc.json', import.meta.url);
const ALERTS_PATH = new URL('../../docs/prometheus/alerts.yml', import.meta.url);
const METRIC_NAME = /\bbudget_cdc_[a-z0-9_]+/g;
/** Series a histogram exposes besides its name: a query names these, /metrics declares the histogram. */
const HISTOGRAM_SERIES_SUFFIX = /_(bucket|sum|count)$/;
/** A Prometheus duration, as `for:` takes it. */
const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const INSERTED_JOBS = 3;
/** Small, so that one multi-row transaction can fill a batch exactly with its last row. */
const BATCH_SIZE = 4;

interface AlertRule {
  alert?: unknown;
  record?: unknown;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/** Every string under `value` (a parsed JSON or YAML document). */
function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

/** The budget_cdc_ metrics `texts` name, histogram series reduced to the histogram's name. */
function metricNamesIn(texts: string[]): string[] {
  const names = texts.flatMap((text) => [...text.matchAll(METRIC_NAME)].map((match) => match[0].replace(HISTOGRAM_SERIES_SUFFIX, '')));
  return [...new Set(names)].sort();
}

/** Metrics /metrics declares (`# TYPE name kind`), whether or not they have a sample yet. */
function declaredMetrics(metrics: string): Set<string> {
  return new Set(
    linesOf(metrics)
      .filter((line) => line.startsWith('# TYPE '))
      .map((line) => line.split(' ')[2]!),
  );
}

/** The value of an exactly named (and labelled) sample in Prometheus text. */
function sample(metrics: string, series: string): number | undefined {
  const line = linesOf(metrics).find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function promtoolPath(): string | undefined {
  const which = spawnSync('which', ['promtool'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : undefined;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as {
  panels: Array<{ type: string; title: string; targets?: unknown[] }>;
};
const alerts = parseYaml(readFileSync(ALERTS_PATH, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> };
const dashboardMetrics = metricNamesIn(stringsIn(dashboard));
const alertMetrics = metricNamesIn(alerts.groups.flatMap((group) => group.rules.map((rule) => String(rule.expr))));
const promtool = promtoolPath();

describe('the Grafana dashboard and the Prometheus alert rules', () => {
  it('alerts.yml: groups of rules, each with a unique alert name, an expression, a severity and a summary', () => {
    expect(alerts.groups.length).toBeGreaterThan(0);
    const names: string[] = [];
    for (const group of alerts.groups) {
      expect(group.name).toEqual(expect.any(String));
      expect(group.rules.length, group.name).toBeGreaterThan(0);
      for (const rule of group.rules) {
        expect(rule.alert, JSON.stringify(rule)).toEqual(expect.stringMatching(/^[A-Za-z_][A-Za-z0-9_]*$/));
        expect(rule.expr, String(rule.alert)).toEqual(expect.stringMatching(/\S/));
        if (rule.for !== undefined) expect(rule.for, String(rule.alert)).toMatch(DURATION);
        expect(rule.labels?.severity, String(rule.alert)).toMatch(/^(critical|warning|info)$/);
        expect(rule.annotations?.summary, String(rule.alert)).toEqual(expect.any(String));
        names.push(String(rule.alert));
      }
    }
    expect(new Set(names).size).toBe(names.length);
    // What issue 13 asks the rules to cover.
    expect(names).toEqual(
      expect.arrayContaining([
        'BudgetCdcConsumerDown',
        'BudgetCdcLagHigh',
        'BudgetCdcSlotStalled',
        'BudgetCdcDeadLetters',
        'BudgetCdcRebuildAfterLoss',
        // Issue 14: a distribution service that stops answering stalls the pipeline.
        'BudgetCdcDistributionServiceUnavailable',
      ]),
    );
  });

  it.skipIf(promtool === undefined)('promtool check rules accepts alerts.yml', () => {
    const output = execFileSync(promtool!, ['check', 'rules', ALERTS_PATH.pathname], { encoding: 'utf8' });
    expect(output).toContain('SUCCESS');
  });

  it('the dashboard: unique panel ids, and a query in every panel that is not a row', () => {
    const panels = dashboard.panels as Array<{ id: number; type: string; title: string; targets?: Array<{ expr?: string }> }>;
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) expect(target.expr, panel.title).toMatch(/budget_cdc_/);
    }
    expect(dashboardMetrics).toEqual(
      expect.arrayContaining([
        'budget_cdc_lag_seconds',
        'budget_cdc_rows_applied_total',
        'budget_cdc_commit_to_redis_seconds',
        'budget_cdc_stage_duration_seconds',
        'budget_cdc_dead_letters_total',
        'budget_cdc_resyncs_total',
        'budget_cdc_redis_redirects_total',
        'budget_cdc_distribution_unavailable_since_seconds',
        'budget_cdc_distribution_requests_total',
      ]),
    );
  });

  describe('against the /metrics of a running consumer', () => {
    const suffix = randomBytes(3).toString('hex');
    const keyPrefix = `t:dash:${suffix}:job:`;
    const ownNames = ['--slot', `dash_slot_${suffix}`, '--publication', `dash_pub_${suffix}`, '--key-prefix', keyPrefix];
    let database: TestDatabase;
    let sql: pg.Client;
    let httpPort: number;
    let runner: CliProcess | undefined;
    let metrics = '';

    async function getMetrics(): Promise<string> {
      const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
      expect(response.status).toBe(200);
      return response.text();
    }

    beforeAll(async () => {
      database = await createTestDatabase(inject('databaseUrl'), 'dashboard');
      sql = new pg.Client({ connectionString: database.url });
      await sql.connect();
      httpPort = await freePort();
      const env = { DATABASE_URL: database.url, REDIS_URL: inject('redisUrl') };
      runner = startCli(['run', ...ownNames, '--http-port', String(httpPort), '--batch-size', String(BATCH_SIZE)], env);
      // Streaming: the slot is active and the slot monitor has read the lag at least once.
      await waitFor(
        async () => {
          const text = await getMetrics().catch(() => undefined);
          return text !== undefined && sample(text, 'budget_cdc_slot_active') === 1 && sample(text, 'budget_cdc_lag_bytes') !== undefined;
        },
        { timeoutMs: 60 * SECOND, message: 'the consumer to stream, with the lag read' },
      );
      // One transaction per row, after streaming started: each is a commit the freshness histogram sees.
      for (let i = 1; i <= INSERTED_JOBS; i++) {
        await sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ($1, 3, 100.00, now())`, [`dash-${i}`]);
      }
      metrics = await waitFor(
        async () => {
          const text = await getMetrics();
          return (sample(text, 'budget_cdc_commit_to_redis_seconds_count') ?? 0) >= INSERTED_JOBS &&
            (sample(text, 'budget_cdc_acknowledgements_total') ?? 0) >= 1
            ? text
            : undefined;
        },
        { timeoutMs: 30 * SECOND, message: `budget_cdc_commit_to_redis_seconds to count the ${INSERTED_JOBS} transactions` },
      );
    });

    afterAll(async () => {
      const cli = runner;
      runner = undefined;
      await stopCli(cli, STOP_TIMEOUT_MS);
      await killLiveCliProcesses();
      await sql?.end();
      await database?.drop();
    });

    it('every budget_cdc_ metric the dashboard and the alert rules use is declared', async () => {
      const declared = declaredMetrics(metrics);
      // Present only with max_slot_wal_keep_size set (absent, not 0, while unlimited: 0 would read as danger).
      const { rows } = await sql.query<{ max_slot_wal_keep_size: string }>('show max_slot_wal_keep_size');
      const walLimited = rows[0]?.max_slot_wal_keep_size !== '-1';
      const optional = walLimited ? [] : ['budget_cdc_safe_wal_size_bytes'];
      for (const name of optional) expect(declared.has(name), `${name} with max_slot_wal_keep_size = -1`).toBe(false);
      const used = [...new Set([...dashboardMetrics, ...alertMetrics])].filter((name) => !optional.includes(name));
      expect(used.length).toBeGreaterThan(10);
      expect(used.filter((name) => !declared.has(name))).toEqual([]);
    });

    it('commit_to_redis_seconds observed each transaction, from 0 up, within the test run', () => {
      const count = sample(metrics, 'budget_cdc_commit_to_redis_seconds_count')!;
      const sum = sample(metrics, 'budget_cdc_commit_to_redis_seconds_sum')!;
      expect(count).toBeGreaterThanOrEqual(INSERTED_JOBS);
      expect(sample(metrics, 'budget_cdc_commit_to_redis_seconds_bucket{le="+Inf"}')).toBe(count);
      // Same host, same clock: each took at least 0 s and less than the 30 s the wait allowed (clamped, not negative).
      expect(sum).toBeGreaterThanOrEqual(0);
      expect(sum / count).toBeLessThan(30);
      expect(sample(metrics, 'budget_cdc_commit_to_redis_seconds_bucket{le="600"}')).toBe(count);
    });

    it('stage_duration_seconds has build, write and acknowledge observations', () => {
      for (const stage of ['build', 'write', 'acknowledge']) {
        expect(sample(metrics, `budget_cdc_stage_duration_seconds_count{stage="${stage}"}`), stage).toBeGreaterThanOrEqual(1);
      }
      // Above 0 shows the chunks of the stream were timed at all.
      expect(sample(metrics, 'budget_cdc_stage_duration_seconds_sum{stage="build"}')).toBeGreaterThan(0);
    });

    it('a transaction whose last row fills a batch is observed, though its commit comes after in an empty batch', async () => {
      const before = await getMetrics();
      const series = ['budget_cdc_commit_to_redis_seconds_count', 'budget_cdc_batches_written_total', 'budget_cdc_redis_writes_total'];
      const [countBefore, batchesBefore, writesBefore] = series.map((name) => sample(before, name)!);
      const values = Array.from({ length: BATCH_SIZE }, (_, i) => `('dash-full-${i}', 3, 100.00, now())`).join(', ');
      await sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ${values}`);
      // Nothing is written after it: the observation must not wait for a later batch.
      const after = await waitFor(
        async () => {
          const text = await getMetrics();
          return (sample(text, 'budget_cdc_commit_to_redis_seconds_count') ?? 0) > countBefore! ? text : undefined;
        },
        { timeoutMs: 30 * SECOND, message: 'the full-batch transaction to be observed' },
      );
      expect(sample(after, 'budget_cdc_commit_to_redis_seconds_count')).toBe(countBefore! + 1);
      // One batch of exactly its rows: the commit came after the batch was full.
      expect(sample(after, 'budget_cdc_batches_written_total')).toBe(batchesBefore! + 1);
      expect(sample(after, 'budget_cdc_redis_writes_total')).toBe(writesBefore! + BATCH_SIZE);
    });
  });
});
