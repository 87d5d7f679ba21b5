import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startSentinelGroup, type SentinelGroup } from '../support/redis-sentinel-group.js';
import { waitFor } from '../support/wait-for.js';

// The harness for Redis that goes back in time: a server that restarts from an older snapshot, and a master that
// the Sentinels replace with its replica, which may not have had every write.

const SECOND = 1000;
const DOWN_AFTER_MS = SECOND;
const FAILOVER_WAIT_MS = 15 * SECOND;
// A Sentinel converts the returning old master after about 8 s; one that went into TILT mode (its timer starved for
// 2 s on a busy machine) acts on nothing for 30 s more.
const REJOIN_WAIT_MS = 75 * SECOND;
const SENTINEL_TEST_TIMEOUT_MS = 120 * SECOND;

const clients: Redis[] = [];

/** A client that reconnects by itself after its server restarts; disconnected after each test. */
function connectTo(url: string): Redis {
  const redis = new Redis(url);
  // A crashed server makes the client report errors while it reconnects; the test waits for what it needs.
  redis.on('error', () => {});
  clients.push(redis);
  return redis;
}

afterEach(() => {
  for (const redis of clients.splice(0)) redis.disconnect();
});

describe('startRedis with persistence', () => {
  let server: RedisServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it("'rdb': after crash() and start(), holds what the last SAVE held and nothing written after it", async () => {
    server = await startRedis({ persistence: 'rdb' });
    const redis = connectTo(server.url);
    await redis.set('topology:saved', 'a');
    expect(await redis.save()).toBe('OK');
    await redis.set('topology:unsaved', 'b');

    await server.crash();
    expect(existsSync(join(server.dir, 'dump.rdb'))).toBe(true);
    await server.start();

    await waitFor(() => redis.ping(), { message: 'the restarted Redis to answer PING' });
    expect(await redis.get('topology:saved')).toBe('a');
    expect(await redis.get('topology:unsaved')).toBeNull();

    const { dir } = server;
    await server.stop();
    server = undefined;
    expect(existsSync(dir)).toBe(false);
  });

  it("'aof': after crash() and start(), holds every acknowledged write", async () => {
    server = await startRedis({ persistence: 'aof' });
    const redis = connectTo(server.url);
    await redis.set('topology:logged', 'c');

    await server.crash();
    await server.start();

    await waitFor(() => redis.ping(), { message: 'the restarted Redis to answer PING' });
    expect(await redis.get('topology:logged')).toBe('c');
  });
});

describe('startSentinelGroup', () => {
  let group: SentinelGroup | undefined;

  afterAll(async () => {
    await group?.stop();
  });

  it(
    'fails over to the replica when the master dies, and the old master comes back as its replica',
    async () => {
      group = await startSentinelGroup({ masterName: 'topology', downAfterMs: DOWN_AFTER_MS });
      expect(group.masterName).toBe('topology');
      expect(group.sentinels).toHaveLength(3);
      expect(group.sentinelsText).toBe(group.sentinels.map(({ host, port }) => `${host}:${port}`).join(','));
      const [first, second] = group.nodes;
      expect(await group.currentMasterPort()).toBe(first.port);

      const firstClient = connectTo(first.url);
      const secondClient = connectTo(second.url);
      await firstClient.set('topology:replicated', 'before');
      await waitFor(async () => (await secondClient.get('topology:replicated')) === 'before', {
        message: 'the replica to receive the key',
      });

      const { oldMasterPort } = await group.killMaster();
      expect(oldMasterPort).toBe(first.port);
      const newMasterPort = await group.waitForFailover(oldMasterPort, FAILOVER_WAIT_MS);
      expect(newMasterPort).toBe(second.port);
      expect(await group.currentMasterPort()).toBe(second.port);
      expect((await secondClient.role())[0]).toBe('master');
      expect(await secondClient.get('topology:replicated')).toBe('before');

      await first.start();
      let lastRole: unknown;
      const role = await waitFor(
        async () => {
          const reply = await firstClient.role();
          lastRole = reply;
          // ROLE of a replica: 'slave', master host, master port, link state, offset.
          return reply[0] === 'slave' && reply[2] === second.port && reply[3] === 'connected' ? reply : undefined;
        },
        { timeoutMs: REJOIN_WAIT_MS, message: `the restarted old master to become a replica of port ${second.port}` },
      ).catch(async (error: Error) => {
        const sentinels = await group!.describeSentinels(first.port).catch((reason: Error) => reason.message);
        throw new Error(`${error.message}; its last ROLE: ${JSON.stringify(lastRole)}; ${sentinels}`, { cause: error });
      });
      expect(role[1]).toBe('127.0.0.1');
      expect(await firstClient.get('topology:replicated')).toBe('before');
    },
    SENTINEL_TEST_TIMEOUT_MS,
  );
});
