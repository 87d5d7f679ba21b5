import { type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findFreePort } from '../../src/local/free-port.js';
import { killRedis, launchRedis, makeTemporaryDir, removeTemporaryDir, startRedis, type RedisServer } from './redis-server.js';
import { waitFor } from './wait-for.js';
import { withConnection } from './redis-probe.js';

// A master, a replica and three Sentinels on 127.0.0.1, for tests of a Redis whose master changes under the client.
// Both data nodes start without --replicaof (the replica is pointed at the master with REPLICAOF once it runs), so
// that a restarted node comes back as a master, as a crashed old master does, and the Sentinels convert it.

const SECOND = 1000;
const HOST = '127.0.0.1';
const SENTINEL_COUNT = 3;
const QUORUM = 2;
const DEFAULT_MASTER_NAME = 'budget-cdc';
const DEFAULT_DOWN_AFTER_MS = SECOND;
// Also twice this is the pause before a failed election is tried again, and this is how long a replica of the wrong
// master is left alone before the Sentinels correct it: short, so that a test does not wait for either.
const FAILOVER_TIMEOUT_MS = 3 * SECOND;
const READY_TIMEOUT_MS = 30 * SECOND;
const DEFAULT_FAILOVER_WAIT_MS = 30 * SECOND;
// A master waits 5 s by default before it streams a snapshot to a new replica, in case more replicas come.
const NODE_ARGS = ['--repl-diskless-sync-delay', '0'];
const MASTER_NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

/** Options of `startSentinelGroup`. */
export interface SentinelGroupOptions {
  /** The name the Sentinels monitor the master under; default 'budget-cdc'. */
  masterName?: string;
  /** How long a node may not answer before a Sentinel calls it down, in ms; default 1000. */
  downAfterMs?: number;
}

/**
 * A data node of the group, master or replica as the Sentinels decide. `start()` brings it back as a master; when
 * another node is master by then, the Sentinels make it a replica of that one (Redis 7.0 waits about 8 s first).
 */
export type SentinelGroupNode = Pick<RedisServer, 'port' | 'url' | 'dir' | 'crash' | 'start'>;

export interface SentinelAddress {
  host: string;
  port: number;
}

/** A Redis master with one replica, watched by three Sentinels with a quorum of two. */
export interface SentinelGroup {
  masterName: string;
  sentinels: SentinelAddress[];
  /** The Sentinels as `host:port,host:port,host:port`. */
  sentinelsText: string;
  /** The two data nodes, master first as they start. */
  nodes: readonly [SentinelGroupNode, SentinelGroupNode];
  /** The master's port as the first Sentinel tells it (`SENTINEL get-master-addr-by-name`). */
  currentMasterPort(): Promise<number>;
  /** Kills the node the first Sentinel names as master with SIGKILL and waits until its port is free. */
  killMaster(): Promise<{ oldMasterPort: number }>;
  /** Waits until every Sentinel names the same master other than `oldMasterPort` and it answers ROLE as master; its port. */
  waitForFailover(oldMasterPort: number, timeoutMs?: number): Promise<number>;
  /**
   * What each Sentinel says of the node on `nodePort` (its flags, or that it does not list it) and whether it is in
   * TILT mode (it then acts on nothing for 30 s): for the message of a test that waited in vain.
   */
  describeSentinels(nodePort: number): Promise<string>;
  /** Kills every process with SIGKILL, waits until their ports are free and removes their directories. */
  stop(): Promise<void>;
}

interface SentinelProcess {
  port: number;
  dir: string;
  child: ChildProcess;
}

/** Starts the group and waits until the replica follows the master and every Sentinel knows both and the others. */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const masterName = options.masterName ?? DEFAULT_MASTER_NAME;
  if (!MASTER_NAME_PATTERN.test(masterName)) {
    throw new Error(`masterName ${JSON.stringify(masterName)} would break sentinel.conf: use letters, digits, '.', '_' and '-'`);
  }
  const downAfterMs = options.downAfterMs ?? DEFAULT_DOWN_AFTER_MS;
  const nodes: RedisServer[] = [];
  const sentinels: SentinelProcess[] = [];
  const stop = async () => {
    // Sentinels first, so that none of them reacts to the data nodes going away.
    await Promise.all(sentinels.map((sentinel) => stopSentinel(sentinel)));
    await Promise.all(
      nodes.map(async (node) => {
        await node.crash();
        await node.stop();
      }),
    );
  };

  try {
    const master = await startRedis({ extraArgs: NODE_ARGS });
    nodes.push(master);
    const replica = await startRedis({ extraArgs: NODE_ARGS });
    nodes.push(replica);
    await withConnection(replica.port, (redis) => redis.call('REPLICAOF', HOST, String(master.port)));
    await waitFor(
      () => withConnection(replica.port, async (redis) => /^master_link_status:up\r?$/m.test(await redis.info('replication'))),
      { timeoutMs: READY_TIMEOUT_MS, message: `the replica on port ${replica.port} to sync with the master on port ${master.port}` },
    );

    for (let index = 0; index < SENTINEL_COUNT; index += 1) {
      sentinels.push(await startSentinel(masterName, master.port, downAfterMs));
    }
    for (const sentinel of sentinels) {
      await waitFor(() => sentinelKnowsGroup(sentinel.port, masterName, replica.port), {
        timeoutMs: READY_TIMEOUT_MS,
        message: `the Sentinel on port ${sentinel.port} to know the replica on port ${replica.port} and ${SENTINEL_COUNT - 1} other Sentinels`,
      });
    }

    const currentMasterPort = () => askMasterPort(sentinels[0]!.port, masterName);
    return {
      masterName,
      sentinels: sentinels.map(({ port }) => ({ host: HOST, port })),
      sentinelsText: sentinels.map(({ port }) => `${HOST}:${port}`).join(','),
      nodes: [master, replica],
      currentMasterPort,
      async killMaster() {
        const oldMasterPort = await currentMasterPort();
        const node = nodes.find(({ port }) => port === oldMasterPort);
        if (!node) throw new Error(`the Sentinels name port ${oldMasterPort} as master, which is none of the group's nodes`);
        await node.crash();
        return { oldMasterPort };
      },
      async waitForFailover(oldMasterPort, timeoutMs = DEFAULT_FAILOVER_WAIT_MS) {
        return waitFor(
          async () => {
            const ports = new Set(await Promise.all(sentinels.map(({ port }) => askMasterPort(port, masterName))));
            const [newMasterPort] = ports;
            if (ports.size !== 1 || newMasterPort === undefined || newMasterPort === oldMasterPort) return undefined;
            const [role] = await withConnection(newMasterPort, (redis) => redis.role());
            return role === 'master' ? newMasterPort : undefined;
          },
          {
            timeoutMs,
            message: `every Sentinel to name a master other than port ${oldMasterPort}, and that node to answer ROLE as master`,
          },
        );
      },
      async describeSentinels(nodePort) {
        const views = await Promise.all(
          sentinels.map(({ port }) => describeSentinel(port, masterName, nodePort).catch((error: Error) => `${port}: ${error.message}`)),
        );
        return `Sentinels: ${views.join('; ')}`;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startSentinel(masterName: string, masterPort: number, downAfterMs: number): Promise<SentinelProcess> {
  const port = await findFreePort();
  // Sentinel rewrites its config file with what it learns, so the file lives in the Sentinel's own directory.
  const dir = await makeTemporaryDir('budget-cdc-sentinel-');
  const configPath = join(dir, 'sentinel.conf');
  const config = [
    `port ${port}`,
    `bind ${HOST}`,
    `dir ${dir}`,
    `sentinel monitor ${masterName} ${HOST} ${masterPort} ${QUORUM}`,
    `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
    `sentinel failover-timeout ${masterName} ${FAILOVER_TIMEOUT_MS}`,
  ];
  await writeFile(configPath, `${config.join('\n')}\n`);
  try {
    return { port, dir, child: await launchRedis(port, dir, [configPath, '--sentinel']) };
  } catch (error) {
    await removeTemporaryDir(dir);
    throw error;
  }
}

async function stopSentinel({ port, dir, child }: SentinelProcess): Promise<void> {
  await killRedis(child, port, 'SIGKILL');
  await removeTemporaryDir(dir);
}

async function sentinelKnowsGroup(sentinelPort: number, masterName: string, replicaPort: number): Promise<boolean> {
  return withConnection(sentinelPort, async (redis) => {
    const replicas = (await redis.call('SENTINEL', 'replicas', masterName)) as string[][];
    const others = (await redis.call('SENTINEL', 'sentinels', masterName)) as string[][];
    const knowsReplica = replicas
      .map(fieldsOf)
      .some((fields) => fields.get('port') === String(replicaPort) && fields.get('flags') === 'slave');
    return knowsReplica && others.length === SENTINEL_COUNT - 1;
  });
}

async function askMasterPort(sentinelPort: number, masterName: string): Promise<number> {
  const address = await withConnection(sentinelPort, (redis) => redis.call('SENTINEL', 'get-master-addr-by-name', masterName));
  if (!Array.isArray(address) || address.length !== 2) {
    throw new Error(`the Sentinel on port ${sentinelPort} does not know master ${masterName}: ${JSON.stringify(address)}`);
  }
  return Number(address[1]);
}

/** One Sentinel's TILT flag and its view of the node on `nodePort`, as a line of a test's error message. */
async function describeSentinel(sentinelPort: number, masterName: string, nodePort: number): Promise<string> {
  return withConnection(sentinelPort, async (redis) => {
    const info = await redis.info('sentinel');
    const tilt = /^sentinel_tilt:(\d+)/m.exec(info)?.[1] ?? '?';
    const master = fieldsOf((await redis.call('SENTINEL', 'master', masterName)) as string[]);
    const replicas = ((await redis.call('SENTINEL', 'replicas', masterName)) as string[][]).map(fieldsOf);
    const node = replicas.find((fields) => fields.get('port') === String(nodePort));
    const nodeText =
      node === undefined
        ? `does not list port ${nodePort} as a replica`
        : `port ${nodePort} flags ${node.get('flags')}, link ${node.get('master-link-status')}, master port ${node.get('master-port')}`;
    return `${sentinelPort}: tilt ${tilt}, master port ${master.get('port')} flags ${master.get('flags')}, ${nodeText}`;
  });
}

/** Sentinel describes an instance as a flat list of names and values. */
function fieldsOf(flat: string[]): Map<string, string> {
  const fields = new Map<string, string>();
  for (let index = 0; index + 1 < flat.length; index += 2) fields.set(flat[index]!, flat[index + 1]!);
  return fields;
}
