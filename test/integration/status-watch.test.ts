import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WatchJson } from '../../src/commands/status-watch-text.js';
import { freePort, killLiveCliProcesses, linesOf, runCli, startCli, type CliProcess, stopCli } from '../support/cli-process.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { waitFor } from '../support/wait-for.js';

// `budget-cdc status --watch` as an operator runs it next to a consumer: stdout is a pipe here, so refreshes
// come one after the other, separated by a blank line, and a signal ends the view with exit 0.

const SECOND = 1000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLEAR_SCREEN = '\x1b[H\x1b[2J';
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((path) => existsSync(path));
/** Settings the parent's environment might hold, left out as startCli does. */
const INHERITED_SETTING = /^(DATABASE_URL|REDIS_URL|LOG_LEVEL|PG_BIN|BUDGET_CDC_.*)$/;

function ownEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !INHERITED_SETTING.test(name)));
}
const STOP_TIMEOUT_MS = 10 * SECOND;
const ROWS_PER_SECOND = /^rows\/s (\d+\.\d)/;
const FRESHNESS = /^freshness \(COMMIT to readable in Redis\): p50 ([\d.]+ m?s), p99 ([\d.]+ m?s) over (\d+) transactions/;

describe('status --watch', () => {
  const suffix = randomBytes(3).toString('hex');
  const ownNames = ['--slot', `watch_slot_${suffix}`, '--publication', `watch_pub_${suffix}`, '--key-prefix', `t:watch:${suffix}:job:`];
  let database: TestDatabase;
  let sql: pg.Client;
  let env: Record<string, string>;
  let httpPort: number;
  let runner: CliProcess | undefined;
  let inserted = 0;

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'watch');
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    httpPort = await freePort();
    env = { DATABASE_URL: database.url, REDIS_URL: inject('redisUrl') };
    runner = startCli(['run', ...ownNames, '--http-port', String(httpPort)], env);
    await waitFor(
      async () => {
        const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
        return linesOf(await response.text()).includes('budget_cdc_slot_active 1');
      },
      { timeoutMs: 60 * SECOND, message: 'the consumer to stream' },
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

  /** The refreshes printed so far; the last one may still be incomplete. */
  function blocksOf(stdout: string): string[][] {
    return stdout.split('\n\n').map(linesOf);
  }

  it('shows rows/s and freshness while rows are inserted, the active consumer, and exits 0 on SIGTERM', async () => {
    const watch = startCli(['status', '--watch', ...ownNames, '--http-port', String(httpPort)], env);
    // One transaction per probe: the view's one-second intervals each see commits until a block shows them.
    const block = await waitFor(
      async () => {
        await sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ($1, 3, 100.00, now())`, [
          `watch-${++inserted}`,
        ]);
        return blocksOf(watch.output().stdout).find(
          (lines) =>
            Number(lines.map((line) => ROWS_PER_SECOND.exec(line)?.[1]).find((rate) => rate !== undefined) ?? 0) > 0 &&
            lines.some((line) => FRESHNESS.test(line)) &&
            lines.some((line) => line.startsWith('stages (share of time): build ')),
        );
      },
      { timeoutMs: 20 * SECOND, intervalMs: 100, message: 'a refresh with rows/s above 0 and freshness' },
    );
    expect(block[0]).toMatch(/^budget-cdc status --watch, \d{4}-\d\d-\d\dT/);
    expect(block).toContainEqual(expect.stringMatching(/^slot watch_slot_\w+: streaming; lag \d+ bytes/));
    expect(block).toContainEqual(expect.stringMatching(/^consumers: active budget-cdc /));
    const freshness = FRESHNESS.exec(block.find((line) => FRESHNESS.test(line))!)!;
    expect(Number(freshness[3])).toBeGreaterThan(0);
    watch.child.kill('SIGTERM');
    const { code, stdout, stderr } = await watch.exit(STOP_TIMEOUT_MS);
    expect(code, stderr).toBe(0);
    // Not a terminal: no cursor movements or screen clearing in what a pipe or a file gets.
    expect(stdout).not.toContain('\x1b[');
    expect(blocksOf(stdout).length).toBeGreaterThanOrEqual(2);
  });

  it.skipIf(SCRIPT === undefined)('on a terminal each refresh replaces the last (cursor home, clear), and SIGTERM exits 0', async () => {
    // script(1) gives the view a pseudo-terminal and exits with its exit code (-e); exec makes the view its child.
    const command = ['exec', process.execPath, 'bin/budget-cdc.js', 'status', '--watch', ...ownNames, '--http-port', String(httpPort)].join(
      ' ',
    );
    const terminal = spawn(SCRIPT!, ['-qfec', command, '/dev/null'], { cwd: REPO_ROOT, env: { ...ownEnvironment(), ...env } });
    let output = '';
    terminal.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => terminal.once('close', (code) => resolve(code)));
    try {
      await waitFor(() => output.split(CLEAR_SCREEN).length > 2 && output.includes('consumers: active budget-cdc'), {
        timeoutMs: 15 * SECOND,
        message: 'two refreshes on the terminal',
      });
      expect(output.startsWith(CLEAR_SCREEN)).toBe(true);
      // The view is script's child; SIGTERM to script itself would hang up the terminal instead.
      const view = Number(readFileSync(`/proc/${terminal.pid}/task/${terminal.pid}/children`, 'utf8').trim().split(' ')[0]);
      process.kill(view, 'SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      terminal.kill('SIGKILL');
    }
  });

  it('--watch with another command is a usage error (exit 2)', async () => {
    const { code, stderr } = await runCli(['inspect', 'watch-1', '--watch', ...ownNames], env);
    expect(code).toBe(2);
    expect(stderr).toBe('budget-cdc: --watch is for "status" only; see "budget-cdc --help"\n');
  });

  it('--json: one object per refresh; without a metrics endpoint it says so and still shows the slot', async () => {
    const closedPort = await freePort();
    const url = `http://127.0.0.1:${closedPort}/metrics`;
    const watch = startCli(['status', '--watch', '--json', ...ownNames, '--http-port', String(closedPort)], env);
    // Complete lines only: the last one may be half written.
    const refreshes = await waitFor(
      () => {
        const lines = linesOf(watch.output().stdout);
        const complete = watch.output().stdout.endsWith('\n') ? lines : lines.slice(0, -1);
        return complete.length >= 2 ? complete.map((line) => JSON.parse(line) as WatchJson) : undefined;
      },
      { timeoutMs: 15 * SECOND, message: 'two refreshes' },
    );
    for (const refresh of refreshes) {
      expect(refresh.metrics).toEqual({
        url,
        error: `metrics endpoint ${url} not reachable: is budget-cdc run serving it (--http-port)?`,
        active: null,
        figures: null,
      });
      expect(refresh.status?.slot).toMatchObject({ exists: true, active: true });
      expect(refresh.status?.consumers.map((consumer) => consumer.role)).toContain('active');
    }
    watch.child.kill('SIGINT');
    const { code, stderr } = await watch.exit(STOP_TIMEOUT_MS);
    expect(code, stderr).toBe(0);
  });
});
