import type { Config } from '../config.js';
import { checkConnection } from '../db/check-database.js';
import { withDatabase } from '../db/database.js';
import { formatLsn } from '../replication/lsn.js';
import { readSlot } from '../replication/slot.js';
import type { Redis } from 'ioredis';
import { connectRedis } from '../sink/redis-client.js';
import { makeSilentLogger } from './logger.js';

/** What `budget-cdc status` reports; the --json output is this object. */
export interface StatusReport {
  slot: {
    name: string;
    exists: boolean;
    active: boolean;
    confirmedLsn: string | null;
    /** Bytes of WAL written since the last position acknowledged by the consumer. */
    lagBytes: number | null;
    /** Bytes of WAL PostgreSQL keeps for the slot. */
    retainedBytes: number | null;
    walStatus: string | null;
  };
  redis: { url: string; reachable: boolean; error: string | null };
}

const REDIS_PROBE_TIMEOUT_MS = 2_000;

/** Reads the slot's state from PostgreSQL and pings Redis. PostgreSQL must be reachable; Redis may not be. */
export async function readStatus(config: Config): Promise<StatusReport> {
  const slot = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    return readSlot(db, config.slotName);
  });
  return {
    slot: {
      name: config.slotName,
      exists: slot !== undefined,
      active: slot?.active ?? false,
      confirmedLsn: slot?.confirmedFlushLsn === undefined ? null : formatLsn(slot.confirmedFlushLsn),
      lagBytes: slot?.lagBytes === undefined ? null : Number(slot.lagBytes),
      retainedBytes: slot?.retainedBytes === undefined ? null : Number(slot.retainedBytes),
      walStatus: slot?.walStatus ?? null,
    },
    redis: await probeRedis(config.redisUrl),
  };
}

async function probeRedis(redisUrl: string): Promise<StatusReport['redis']> {
  const url = new URL(redisUrl);
  url.password = url.password === '' ? '' : '***';
  let redis: Redis | undefined;
  try {
    const reply = await Promise.race([
      connectRedis(redisUrl, makeSilentLogger()).then((connected) => {
        redis = connected;
        return connected.ping();
      }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), REDIS_PROBE_TIMEOUT_MS).unref()),
    ]);
    return { url: url.toString(), reachable: reply === 'PONG', error: reply === 'PONG' ? null : `unexpected PING reply ${reply}` };
  } catch (error) {
    return { url: url.toString(), reachable: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    redis?.disconnect();
  }
}

/** The human-readable form of the report. */
export function formatStatus(report: StatusReport): string {
  const { slot, redis } = report;
  const lines = [
    slot.exists
      ? `slot ${slot.name}: ${slot.active ? 'active' : 'inactive'}, confirmed ${slot.confirmedLsn}, lag ${slot.lagBytes} bytes, retained ${slot.retainedBytes} bytes, wal_status ${slot.walStatus}`
      : `slot ${slot.name}: does not exist (created by "budget-cdc run")`,
    `redis ${redis.url}: ${redis.reachable ? 'reachable' : `unreachable (${redis.error})`}`,
  ];
  return lines.join('\n');
}
