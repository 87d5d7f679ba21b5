import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { findFreePort, isPortFree } from '../../src/local/free-port.js';
import { makeTemporaryDir, removeTemporaryDir, startRedis, type RedisServer } from './redis-server.js';
import { makeCertificates, type CertificateFiles } from './redis-tls.js';
import { waitFor } from './wait-for.js';
import { withConnection } from './redis-probe.js';

export { withConnection };

// A Redis Cluster of throwaway redis-server processes on 127.0.0.1, for tests of a sink that spreads its keys over
// several masters. Each node is a `startRedis` server with cluster mode on, so it stops, crashes and restarts (from
// its nodes.conf, rejoining the cluster) like any other test Redis.

const SECOND = 1000;
const HOST = '127.0.0.1';
const SLOT_COUNT = 16384;
/** A node also listens on port + 10000 for the cluster bus, which must be a valid port and free as well. */
const BUS_PORT_OFFSET = 10000;
const MAX_NODE_PORT = 65535 - BUS_PORT_OFFSET;
const PORT_ATTEMPTS = 20;
const NODE_TIMEOUT_MS = 2 * SECOND;
const CREATE_TIMEOUT_MS = 60 * SECOND;
const READY_TIMEOUT_MS = 30 * SECOND;
// persistence 'none' adds --save '' --appendonly no. A replica may take over even when it lost touch with its master
// long ago (validity factor 0), and a master streams its snapshot to a replica at once, not after 5 s.
const NODE_ARGS = [
  '--cluster-enabled',
  'yes',
  '--cluster-config-file',
  'nodes.conf',
  '--cluster-node-timeout',
  String(NODE_TIMEOUT_MS),
  '--cluster-replica-validity-factor',
  '0',
  '--repl-diskless-sync-delay',
  '0',
];

const execFileAsync = promisify(execFile);

/** Options of `startRedisCluster`. */
export interface RedisClusterOptions {
  /** How many masters share the 16384 slots; default 3, the least `redis-cli --cluster create` accepts. */
  masters?: number;
  /** How many replicas follow each master; default 0. */
  replicasPerMaster?: number;
  /**
   * Default false. When true, each node also serves TLS on a port of its own (`tls.ports`), with a certificate for
   * 127.0.0.1 signed by a CA made for the cluster, and the cluster bus and replication go over TLS too. The plain
   * port stays, for this harness's probes and redis-cli.
   */
  tls?: boolean;
}

/** How a TLS client reaches a cluster started with `tls: true`. */
export interface RedisClusterTls {
  /** Each node's TLS port, in the order of `nodes`: CLUSTER SLOTS asked over TLS names these, not the plain ports. */
  ports: number[];
  /** Every TLS port as `127.0.0.1:port,127.0.0.1:port,...`, for REDIS_CLUSTER_NODES. */
  seeds: string;
  /** PEM of the CA that signed the nodes' certificate, for `tls: { ca }`. */
  ca: string;
  /** The file that holds `ca`, for NODE_EXTRA_CA_CERTS. */
  caPath: string;
}

/** A node of the cluster; master or replica as `redis-cli --cluster create` and later failovers decide. */
export type RedisClusterNode = Pick<RedisServer, 'port' | 'url' | 'stop' | 'crash' | 'start'>;

/** A throwaway Redis Cluster whose slots are all assigned. */
export interface RedisCluster {
  /** Every node, in the order given to `redis-cli --cluster create` (masters first, as it assigns them). */
  nodes: RedisClusterNode[];
  /** Every node as `127.0.0.1:port,127.0.0.1:port,...`. */
  seeds: string;
  /** With `tls: true` only. */
  tls?: RedisClusterTls;
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Starts `masters * (1 + replicasPerMaster)` redis-server processes (from PATH) in cluster mode, joins them with
 * `redis-cli --cluster create`, and waits until every node reports all slots assigned and the cluster ok.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 0;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new Error(`masters is ${masters}: redis-cli --cluster create needs an integer of at least 3`);
  }
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) {
    throw new Error(`replicasPerMaster is ${replicasPerMaster}: use an integer of 0 or more`);
  }
  const nodes: RedisServer[] = [];
  // The certificates outlive a crashed node, which restarts with the same files.
  let certificateDir: string | undefined;
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    if (certificateDir !== undefined) await removeTemporaryDir(certificateDir);
  };

  try {
    const nodeCount = masters * (1 + replicasPerMaster);
    let tlsSettings: { files: CertificateFiles; ports: number[] } | undefined;
    if (options.tls === true) {
      certificateDir = await makeTemporaryDir('budget-cdc-redis-cluster-tls-');
      tlsSettings = { files: await makeCertificates(certificateDir), ports: [] };
    }
    for (let index = 0; index < nodeCount; index += 1) {
      const { server, tlsPort } = await startClusterNode(tlsSettings?.files);
      nodes.push(server);
      if (tlsPort !== undefined) tlsSettings?.ports.push(tlsPort);
    }
    const addresses = nodes.map(({ port }) => `${HOST}:${port}`);
    await createCluster(addresses, replicasPerMaster);
    for (const node of nodes) {
      await waitFor(() => clusterIsReady(node.port, nodeCount, nodeCount - masters), {
        timeoutMs: READY_TIMEOUT_MS,
        message:
          `the cluster node on port ${node.port} to know all ${nodeCount} nodes, which replicas follow which master, ` +
          `and report cluster_state:ok with all ${SLOT_COUNT} slots assigned`,
      });
    }
    const cluster: RedisCluster = { nodes, seeds: addresses.join(','), stop };
    if (tlsSettings !== undefined) {
      const { files, ports } = tlsSettings;
      const seeds = ports.map((port) => `${HOST}:${port}`).join(',');
      cluster.tls = { ports, seeds, ca: await readFile(files.ca, 'utf8'), caPath: files.ca };
    }
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The fields of `CLUSTER INFO` on `port`. */
export async function clusterInfo(port: number): Promise<Map<string, string>> {
  const text = await withConnection(port, (redis) => redis.call('CLUSTER', 'INFO') as Promise<string>);
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const separator = line.indexOf(':');
    if (separator > 0) fields.set(line.slice(0, separator), line.slice(separator + 1));
  }
  return fields;
}

/** One line of `CLUSTER NODES`. */
export interface ClusterNodeEntry {
  id: string;
  port: number;
  flags: string[];
  /** The id of the master it replicates, or undefined for a master. */
  masterId: string | undefined;
}

/** The cluster as the node on `port` sees it (`CLUSTER NODES`). */
export async function clusterNodes(port: number): Promise<ClusterNodeEntry[]> {
  const text = await withConnection(port, (redis) => redis.call('CLUSTER', 'NODES') as Promise<string>);
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      // <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
      const [id = '', address = '', flags = '', master = '-'] = line.split(' ');
      const port = Number(/:(\d+)@/.exec(address)?.[1]);
      return { id, port, flags: flags.split(','), masterId: master === '-' ? undefined : master };
    });
}

/**
 * A cluster node on a port whose bus port (port + 10000) is valid and was free a moment ago; with `certificates`, also
 * on a TLS port, which the bus and replication use too.
 */
async function startClusterNode(certificates?: CertificateFiles): Promise<{ server: RedisServer; tlsPort: number | undefined }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt += 1) {
    const port = await findFreePort();
    if (port > MAX_NODE_PORT || !(await isPortFree(port + BUS_PORT_OFFSET))) continue;
    const tlsPort = certificates === undefined ? undefined : await findFreePort();
    const tlsArgs =
      certificates === undefined || tlsPort === undefined
        ? []
        : [
            ['--tls-port', String(tlsPort), '--tls-cluster', 'yes', '--tls-replication', 'yes'],
            // With --tls-cluster the bus would listen on the TLS port + 10000, which may be out of range or taken:
            // pinned to the plain port's, whose bus port was checked above.
            ['--cluster-port', String(port + BUS_PORT_OFFSET)],
            ['--tls-cert-file', certificates.cert, '--tls-key-file', certificates.key, '--tls-ca-cert-file', certificates.ca],
            // Clients need no certificate; the bus still requires one from each node (the certificate is for clientAuth too).
            ['--tls-auth-clients', 'no'],
          ].flat();
    try {
      return { server: await startRedis({ port, extraArgs: [...NODE_ARGS, ...tlsArgs] }), tlsPort };
    } catch (error) {
      // Another program may have taken either port since; startRedis has cleaned up, so try another.
      lastError = error;
    }
  }
  throw new Error(
    `found no port below ${MAX_NODE_PORT + 1} whose cluster bus port (+${BUS_PORT_OFFSET}) was free in ${PORT_ATTEMPTS} attempts: ` +
      'lower net.ipv4.ip_local_port_range or free some ports',
    { cause: lastError },
  );
}

async function createCluster(addresses: string[], replicasPerMaster: number): Promise<void> {
  const args = ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'];
  try {
    await execFileAsync('redis-cli', args, { timeout: CREATE_TIMEOUT_MS });
  } catch (error) {
    const output =
      error instanceof Error && 'stdout' in error ? `${String(error.stdout)}${String((error as { stderr?: unknown }).stderr)}` : '';
    throw new Error(`redis-cli ${args.join(' ')} failed (install redis-cli 7.0 or later on PATH):\n${output}`, { cause: error });
  }
}

/**
 * Ready when `port` sees every node, every slot assigned, and each replica following its master: gossip spreads
 * replica assignments after the slots, and a test that kills a master needs its replica known everywhere.
 */
async function clusterIsReady(port: number, nodeCount: number, replicaCount: number): Promise<boolean> {
  const info = await clusterInfo(port);
  const ready =
    info.get('cluster_state') === 'ok' &&
    info.get('cluster_slots_assigned') === String(SLOT_COUNT) &&
    info.get('cluster_known_nodes') === String(nodeCount);
  return ready && (await clusterNodes(port)).filter(({ masterId }) => masterId !== undefined).length === replicaCount;
}

/** Options of `reshardCluster`: move `slots` hash slots from one master to another, by node id. */
export interface ReshardOptions {
  from: string;
  to: string;
  slots: number;
  /** Keys moved per MIGRATE (`--cluster-pipeline`); default 100 (redis-cli's 10 is slow for tests). */
  keysPerMigrate?: number;
  timeoutMs?: number;
}

/**
 * Moves slots (and their keys, MIGRATE by MIGRATE) with `redis-cli --cluster reshard`, through the node on `port`,
 * while clients keep writing: those see ASK and TRYAGAIN for a slot being moved, MOVED for one moved. redis-cli
 * takes the source's lowest slots first. Resolves with redis-cli's output once every slot is moved.
 */
export async function reshardCluster(port: number, options: ReshardOptions): Promise<string> {
  const args = [
    '--cluster',
    'reshard',
    `${HOST}:${port}`,
    '--cluster-from',
    options.from,
    '--cluster-to',
    options.to,
    '--cluster-slots',
    String(options.slots),
    '--cluster-pipeline',
    String(options.keysPerMigrate ?? 100),
    '--cluster-yes',
  ];
  try {
    const { stdout } = await execFileAsync('redis-cli', args, { timeout: options.timeoutMs ?? 120 * SECOND, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    throw new Error(`redis-cli ${args.join(' ')} failed:\n${outputOf(error)}`, { cause: error });
  }
}

/**
 * Resolves once every node on `ports` gives the same slot owners and no slot is half moved: redis-cli refuses a
 * reshard ("Nodes don't agree about configuration") until gossip has spread the last one.
 */
export async function waitForClusterAgreement(ports: readonly number[], timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  await waitFor(
    async () => {
      const views = await Promise.all(
        ports.map((port) => withConnection(port, (redis) => redis.call('CLUSTER', 'NODES') as Promise<string>)),
      );
      const signatures = views.map((text) => {
        if (text.includes('->-') || text.includes('-<-')) return undefined; // a slot migrating or importing
        return text
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => {
            const [id = '', , flags = '', , , , , , ...slots] = line.split(' ');
            return `${id} ${flags.includes('master') ? 'master' : 'replica'} ${slots.join(' ')}`;
          })
          .sort()
          .join('\n');
      });
      return signatures.every((signature) => signature !== undefined && signature === signatures[0]);
    },
    { timeoutMs, message: `the cluster nodes on ports ${ports.join(', ')} to agree on every slot's master, with no slot half moved` },
  );
}

/** The hash slots each master serves, by node id, as the node on `port` sees it. */
export async function slotsByMaster(port: number): Promise<Map<string, number[]>> {
  const text = await withConnection(port, (redis) => redis.call('CLUSTER', 'NODES') as Promise<string>);
  const owners = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    const [id = '', , flags = '', , , , , , ...ranges] = line.split(' ');
    if (!flags.split(',').includes('master')) continue;
    const slots: number[] = [];
    // "5461-10922" or "42"; "[42->-id]" marks a slot being moved, still served here.
    for (const range of ranges) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(range);
      if (match === null) continue;
      const first = Number(match[1]);
      const last = Number(match[2] ?? match[1]);
      for (let slot = first; slot <= last; slot++) slots.push(slot);
    }
    owners.set(id, slots);
  }
  return owners;
}

function outputOf(error: unknown): string {
  if (!(error instanceof Error) || !('stdout' in error)) return '';
  return `${String(error.stdout)}${String((error as { stderr?: unknown }).stderr)}`;
}
