import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { loadConfig, loadQuickstartConfig, type Config, type ConfigOptions } from '../config.js';
import { checkConnection } from '../db/check-database.js';
import { withDatabase } from '../db/database.js';
import { ConfigError, SetupError } from '../errors.js';
import { generatedJobsCsv } from '../load/generated-jobs.js';
import { loadCsv, STDIN_SOURCE } from '../load/load-csv.js';
import { LOCAL_DATABASE_NAME } from '../local/local-postgres.js';
import { readQuickstartState, runningQuickstartPid } from '../local/quickstart-folder.js';
import { parseLsn } from '../lsn.js';
import { readSlot } from '../replication/slot.js';
import { connectRedis } from '../sink/redis-client.js';
import { makeSilentLogger } from '../logger.js';

const SAMPLE_KEYS = 3;
const CATCH_UP_TIMEOUT_MS = 10 * 60_000;
const POLL_INTERVAL_MS = 200;

/**
 * `budget-cdc demo`: loads `rows` generated jobs through the `load` code path (one COPY), prints the rate, waits
 * until the running consumer has written them, and prints a few keys with their TTLs. Uses DATABASE_URL and
 * REDIS_URL, or else the servers of the `budget-cdc start` running on the data folder.
 */
export async function runDemo(options: ConfigOptions, rows: number, out: NodeJS.WritableStream): Promise<number> {
  const config = await demoConfig(options);
  await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    const slot = await readSlot(db, config.slotName).catch(() => undefined);
    if (slot?.active !== true) {
      throw new SetupError(
        `no consumer streams from slot ${config.slotName}: start one first ("npm start", or "budget-cdc run" with the same settings), then run the demo again`,
      );
    }
  });

  const idPrefix = `demo-${Date.now().toString(36)}-`;
  out.write(`loading ${rows} generated jobs (${idPrefix}0 … ${idPrefix}${rows - 1}) through "budget-cdc load"\n`);
  const loadStarted = performance.now();
  const { rows: loaded } = await loadCsv(config.databaseUrl, STDIN_SOURCE, {
    progress: process.stderr.isTTY === true,
    stdin: generatedJobsCsv(rows, idPrefix, Date.now()),
  });
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  out.write(`loaded ${loaded} rows in ${loadSeconds.toFixed(1)} s (${rate(loaded, loadSeconds)} rows/s)\n`);

  await waitForConsumer(config, loadStarted, loaded, out);
  await printSampleKeys(config, idPrefix, rows, out);
  return 0;
}

async function demoConfig(options: ConfigOptions): Promise<Config> {
  const settings = loadQuickstartConfig(options);
  if (settings.databaseUrl !== undefined) return loadConfig(options);
  const dataDir = resolve(settings.dataDir);
  if ((await runningQuickstartPid(dataDir)) === undefined) {
    throw new SetupError(
      `nothing to load into: start the pipeline first with "npm start" (in another terminal), or set DATABASE_URL and REDIS_URL`,
    );
  }
  const state = await readQuickstartState(dataDir);
  return loadConfig({
    ...options,
    databaseUrl:
      state.postgresPort === undefined ? undefined : `postgres://postgres@127.0.0.1:${state.postgresPort}/${LOCAL_DATABASE_NAME}`,
    redisUrl: settings.redisUrl ?? (state.redisPort === undefined ? undefined : `redis://127.0.0.1:${state.redisPort}`),
  });
}

/** Waits until the slot has confirmed the WAL position after the load: every row is then in Redis. */
async function waitForConsumer(config: Config, loadStarted: number, rows: number, out: NodeJS.WritableStream): Promise<void> {
  await withDatabase(config.databaseUrl, async (db) => {
    const result = await sql<{ lsn: string }>`select pg_current_wal_insert_lsn()::text as lsn`.execute(db);
    const target = parseLsn(result.rows[0]!.lsn);
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    for (;;) {
      const slot = await readSlot(db, config.slotName);
      if ((slot?.confirmedFlushLsn ?? 0n) >= target) break;
      if (Date.now() > deadline) {
        throw new Error(
          `the consumer has not written the rows within ${CATCH_UP_TIMEOUT_MS / 60_000} minutes: see "budget-cdc status" and its logs`,
        );
      }
      await sleep(POLL_INTERVAL_MS);
    }
  });
  const seconds = (performance.now() - loadStarted) / 1000;
  out.write(`the consumer wrote them to Redis ${seconds.toFixed(1)} s after the load started (${rate(rows, seconds)} rows/s end to end)\n`);
}

async function printSampleKeys(config: Config, idPrefix: string, rows: number, out: NodeJS.WritableStream): Promise<void> {
  const redis = await connectRedis(config, makeSilentLogger());
  try {
    for (let n = 0; n < SAMPLE_KEYS; n++) {
      const key = `${config.keyPrefix}${idPrefix}${Math.floor((n * rows) / SAMPLE_KEYS)}`;
      const value = await redis.get(key);
      const ttlMs = await redis.pttl(key);
      if (typeof ttlMs !== 'number') throw new Error(`PTTL ${key} answered ${String(ttlMs)}`);
      out.write(`${key}  TTL ${value === null ? 'none (no key)' : formatDuration(ttlMs)}\n  ${value ?? '(no key)'}\n`);
    }
  } finally {
    redis.disconnect();
  }
}

function rate(rows: number, seconds: number): string {
  return Math.round(rows / Math.max(seconds, 0.001)).toLocaleString('en-US');
}

/** 2d 13h 04m 05s. */
function formatDuration(ms: number): string {
  if (ms < 0) return 'none';
  const seconds = Math.floor(ms / 1000);
  const [d, h, m, s] = [Math.floor(seconds / 86_400), Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60];
  return `${d}d ${h}h ${String(m).padStart(2, '0')}m ${String(s).padStart(2, '0')}s`;
}

/** `budget-cdc demo [--rows N]`. */
export async function demoCommand(options: ConfigOptions, rowsText: string): Promise<number> {
  const rows = /^[1-9]\d{0,8}$/.test(rowsText) ? Number(rowsText) : NaN;
  if (!Number.isSafeInteger(rows)) throw new ConfigError('--rows', `--rows must be a positive integer up to 999999999, got "${rowsText}"`);
  return runDemo(options, rows, process.stdout);
}
