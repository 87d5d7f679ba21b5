import { masterNodes, type RedisClient } from '../sink/redis-client.js';
import { publishedRolePrefix } from '../sink/internal-keys.js';
import type { DistributionUnavailable } from './distribution-availability.js';
import type { ConsumerFailing } from './failure-tracker.js';
import type { ConsumerRole } from './readiness.js';

/** A process's role expires this long after it was written: a process that died disappears from `status`. */
const PUBLISHED_ROLE_TTL_MS = 10_000;
const SCAN_COUNT = 100;

/** What a running consumer says of itself, for `budget-cdc status` in another process. */
export interface PublishedRole {
  /** The process, as its replication connection names itself ("budget-cdc host-a pid 17"). */
  process: string;
  role: ConsumerRole;
  /** When it was written (ISO). */
  at: string;
  /** Set while its sessions keep failing. */
  failing?: ConsumerFailing;
  /** Set while its distribution service (--distribution URL) fails as a whole; absent in roles of older versions. */
  distributionUnavailable?: DistributionUnavailable;
}

/** Writes this process's role under the slot; refreshed every second by the running consumer. */
export async function publishRole(
  redis: RedisClient,
  slotName: string,
  process: string,
  role: ConsumerRole,
  problems: { failing: ConsumerFailing | undefined; distributionUnavailable: DistributionUnavailable | undefined },
): Promise<void> {
  const key = publishedRolePrefix(slotName) + process;
  const { failing, distributionUnavailable } = problems;
  const value: PublishedRole = {
    process,
    role,
    at: new Date().toISOString(),
    ...(failing === undefined ? {} : { failing }),
    ...(distributionUnavailable === undefined ? {} : { distributionUnavailable }),
  };
  const reply = await redis.set(key, JSON.stringify(value), 'PX', PUBLISHED_ROLE_TTL_MS);
  if (reply !== 'OK') throw new Error(`redis SET ${key} answered ${String(reply)}`);
}

/** The roles the slot's consumers published in the last 10 s, active first. */
export async function readPublishedRoles(redis: RedisClient, slotName: string): Promise<PublishedRole[]> {
  const roles: PublishedRole[] = [];
  // The slot name is a plain SQL name (no glob characters), so it can go into the pattern as is.
  const pattern = publishedRolePrefix(slotName) + '*';
  // Each process's key hashes to its own slot: in a cluster they are spread over the masters, and SCAN sees
  // only the keys of the server it runs on.
  for (const server of masterNodes(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const key of keys) {
        // Through the client, not the master: a key moved meanwhile (resharding) is followed to its new master.
        const text = await redis.get(key);
        if (text !== null) roles.push(JSON.parse(text) as PublishedRole);
      }
    } while (cursor !== '0');
  }
  const rank = { active: 0, starting: 1, standby: 2 } as const;
  return roles.sort((a, b) => rank[a.role] - rank[b.role] || a.process.localeCompare(b.process));
}
