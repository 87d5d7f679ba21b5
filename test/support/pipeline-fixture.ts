import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config.js';
import { startObservedConsumer, type ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { withDatabase } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { makeSilentLogger } from '../../src/logger.js';
import { parseLsn, type Lsn } from '../../src/lsn.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';
import { waitFor } from './wait-for.js';

/** One test file's world: its own database (migrated), slot, publication and key prefix. */
export interface PipelineFixture {
  config: Config;
  database: TestDatabase;
  /** A plain connection to the test database. */
  sql: pg.Client;
  /** A plain Redis connection (not the pipeline's). */
  redis: Redis;
  /** Starts the consumer in this process; stop it with `consumer.stop()` or `close()`. */
  startConsumer(overrides?: Partial<Config>): Promise<Consumer>;
  /** The server's WAL insert position (not pg_current_wal_lsn: with synchronous_commit=off a commit can lie beyond it): wait for the slot to confirm it to know everything before is in Redis. */
  currentLsn(): Promise<Lsn>;
  /** The slot's confirmed_flush_lsn, or undefined when there is no slot. */
  confirmedLsn(): Promise<Lsn | undefined>;
  /** Waits until the slot confirms `lsn` (default: the current WAL position). */
  waitForConfirmed(lsn?: Lsn, timeoutMs?: number): Promise<void>;
  /** The environment that points `budget-cdc` (the CLI) at this fixture's database, Redis, slot and prefix. */
  cliEnv(): Record<string, string>;
  /** The parsed JSON at job:<jobId> under this fixture's prefix, or null. */
  getJob(jobId: string): Promise<Record<string, unknown> | null>;
  close(): Promise<void>;
}

export async function makePipelineFixture(adminUrl: string, redisUrl: string, name: string): Promise<PipelineFixture> {
  const database = await createTestDatabase(adminUrl, name);
  const suffix = randomBytes(3).toString('hex');
  const config = loadConfig(
    {
      databaseUrl: database.url,
      redisUrl,
      slot: `slot_${name}_${suffix}`.toLowerCase().replace(/[^a-z0-9_]/g, '_'),
      publication: `pub_${name}_${suffix}`.toLowerCase().replace(/[^a-z0-9_]/g, '_'),
      keyPrefix: `t:${name}:${suffix}:job:`,
      logLevel: 'silent',
    },
    {},
  );
  await withDatabase(config.databaseUrl, (db) => migrate(db, config.publicationName));
  const sql = new pg.Client({ connectionString: database.url });
  // A server restart (reconnect tests) breaks this idle connection: its 'error' event must not crash the
  // test process; a query on it then fails and says so.
  sql.on('error', () => undefined);
  await sql.connect();
  const redis = new Redis(redisUrl);
  // Tests restart or kill Redis servers; this connection reconnects by itself, and a query says what failed.
  redis.on('error', () => undefined);
  const consumers: Consumer[] = [];

  const fixture: PipelineFixture = {
    config,
    database,
    sql,
    redis,
    async startConsumer(overrides = {}) {
      const consumer = await startObservedConsumer({ ...config, ...overrides }, makeSilentLogger());
      consumers.push(consumer);
      return consumer;
    },
    async currentLsn() {
      const { rows } = await sql.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
      return parseLsn(rows[0]!.lsn);
    },
    async confirmedLsn() {
      const { rows } = await sql.query<{ lsn: string | null }>(
        'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
        [config.slotName],
      );
      const lsn = rows[0]?.lsn;
      return lsn === undefined || lsn === null ? undefined : parseLsn(lsn);
    },
    async waitForConfirmed(lsn, timeoutMs = 60_000) {
      const target = lsn ?? (await fixture.currentLsn());
      await waitFor(async () => ((await fixture.confirmedLsn()) ?? 0n) >= target, {
        timeoutMs,
        message: `slot ${config.slotName} to confirm ${target}`,
      });
    },
    cliEnv() {
      return {
        DATABASE_URL: config.databaseUrl,
        REDIS_URL: config.redisUrl,
        BUDGET_CDC_SLOT: config.slotName,
        BUDGET_CDC_PUBLICATION: config.publicationName,
        BUDGET_CDC_KEY_PREFIX: config.keyPrefix,
      };
    },
    async getJob(jobId) {
      const value = await redis.get(config.keyPrefix + jobId);
      return value === null ? null : (JSON.parse(value) as Record<string, unknown>);
    },
    async close() {
      await Promise.all(consumers.map((c) => c.stop()));
      await sql.end();
      redis.disconnect();
      await database.drop();
    },
  };
  return fixture;
}
