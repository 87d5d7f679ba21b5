import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { slotCheckpointKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, runCli, startCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedisCluster, withConnection, type RedisCluster, type RedisClusterTls } from '../support/redis-cluster.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Issue 12: on a Redis Cluster, "password and TLS come as they do for REDIS_URL". `budget-cdc` is given the nodes'
// TLS ports (REDIS_CLUSTER_NODES) and a rediss:// REDIS_URL whose host and port are never used, trusts the test CA
// through NODE_EXTRA_CA_CERTS as a user would, and logs in on every master as a user with only the rights
// docs/operations.md ("Redis ACL") lists.

const SECOND = 1000;
const USER = 'budget_cdc';
const PASSWORD = 'secret';
const ROWS = 3000;
/** docs/operations.md "Redis ACL": the commands budget-cdc needs on a cluster, and no others. */
const COMMANDS = [
  ...['multi', 'exec', 'set', 'del', 'lpush', 'ltrim', 'wait', 'get', 'exists', 'unlink', 'scan', 'lrange', 'llen'],
  ...['hincrby', 'hset', 'hgetall', 'pttl', 'pexpiretime', 'ping', 'info', 'select'],
  ...['client|setname', 'client|list', 'client|kill', 'cluster|slots', 'cluster|info', 'cluster|nodes', 'asking'],
];

describe('Redis Cluster over TLS, as an ACL user', () => {
  let cluster: RedisCluster;
  let tls: RedisClusterTls;
  let fx: PipelineFixture;
  let reader: Cluster;
  let env: Record<string, string>;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0, tls: true });
    tls = cluster.tls!;
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'clustertls');
    // ACL users are per node: a cluster does not spread them.
    for (const node of cluster.nodes) {
      const rights = ['on', `>${PASSWORD}`, `~${fx.config.keyPrefix}*`, '~budget-cdc:*', '-@all', ...COMMANDS.map((c) => `+${c}`)];
      expect(await withConnection(node.port, (redis) => redis.call('ACL', 'SETUSER', USER, ...rights))).toBe('OK');
    }
    // The test's own reader, over TLS as that user: ioredis learns the TLS ports from CLUSTER SLOTS asked over TLS.
    // No servername: Node sends none for an IP address anyway, and would warn (DEP0123) if given one.
    reader = new Cluster(
      tls.ports.map((port) => ({ host: '127.0.0.1', port })),
      { redisOptions: { username: USER, password: PASSWORD, tls: { ca: tls.ca } } },
    );
    reader.on('error', () => undefined);
    env = {
      ...fx.cliEnv(),
      REDIS_CLUSTER_NODES: tls.seeds,
      // Only user, password and TLS are read from it; port 1 has no Redis, so a use of its address would fail.
      REDIS_URL: `rediss://${USER}:${PASSWORD}@127.0.0.1:1/0`,
      NODE_EXTRA_CA_CERTS: tls.caPath,
      LOG_LEVEL: 'info',
    };
  }, 60 * SECOND);

  afterAll(async () => {
    await killLiveCliProcesses();
    reader?.disconnect();
    await fx?.close();
    await cluster?.stop();
  });

  /** `budget-cdc run` on the cluster, started by the first test and stopped by the last. */
  let run: CliProcess;

  it('`budget-cdc run` writes inserts, an update and a delete to every master over TLS, as that user', async () => {
    run = startCli(['run', '--http-port', '0'], env);
    try {
      // A run that cannot connect (refuses the certificate, cannot log in) exits: no need to wait for the deadline then.
      await waitFor(async () => run.child.exitCode !== null || (await reader.exists(slotCheckpointKey(fx.config.keyPrefix, 0))) === 1, {
        timeoutMs: 30 * SECOND,
        message: 'the initial load',
      });
      if (run.child.exitCode !== null) throw new Error(`budget-cdc run exited with code ${run.child.exitCode}`);
      await fx.sql.query(
        `insert into jobs (job_id, days_online, budget) select 'tls-' || g, 1 + g % 30, g from generate_series(1, ${ROWS}) g`,
      );
      await fx.sql.query(`update jobs set budget = budget + 1 where job_id = 'tls-7'`);
      await fx.sql.query(`delete from jobs where job_id = 'tls-8'`);
      await fx.waitForConfirmed(undefined, 30 * SECOND);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nbudget-cdc run's stderr:\n${run.output().stderr}`, { cause: error });
    }
    expect(await compareRedisWithTable(fx.sql, reader, fx.config.keyPrefix)).toEqual([]);
    expect(JSON.parse((await reader.get(`${fx.config.keyPrefix}tls-7`))!)).toMatchObject({ budget: '8.00' });
    expect(await reader.exists(`${fx.config.keyPrefix}tls-8`)).toBe(0);

    // Every master has the batch writer connected, as that user, on its TLS port: no write went over a plain port.
    for (const [index, node] of cluster.nodes.entries()) {
      const clients = (await withConnection(node.port, (redis) => redis.call('CLIENT', 'LIST', 'TYPE', 'normal') as Promise<string>))
        .split('\n')
        .filter((line) => line.includes(` name=budget-cdc-writer-${fx.config.slotName} `));
      expect(clients.length, `writer connections on node ${node.port}`).toBeGreaterThan(0);
      for (const line of clients) {
        expect(line).toContain(` user=${USER} `);
        expect(line).toContain(` laddr=127.0.0.1:${tls.ports[index]} `);
      }
    }
  });

  // status reads the 16,384 slot checkpoints at once: every master's connection must be open first (ioredis, with
  // no offline queue, refuses commands to a master whose connection is still opening).
  it('`budget-cdc status` reports the cluster reachable, over TLS, as that user', async () => {
    const status = await runCli(['status'], env);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain(`redis cluster via ${tls.seeds}: reachable`);
  });

  it('`budget-cdc status` with a wrong password fails, saying why, without the password', async () => {
    const wrongPassword = 'not-the-secret-42';
    const status = await runCli(['status'], { ...env, REDIS_URL: `rediss://${USER}:${wrongPassword}@127.0.0.1:1/0` });
    const output = status.stdout + status.stderr;
    expect(status.code, output).not.toBe(0);
    expect(output).toContain(`redis cluster via ${tls.seeds}: unreachable`);
    expect(output).toMatch(/WRONGPASS/);
    expect(output).not.toContain(wrongPassword);
  });

  it('`budget-cdc run` stops on SIGTERM with exit code 0, without warning about TLS server names', async () => {
    expect(run.child.exitCode, run.output().stderr).toBeNull();
    run.child.kill('SIGTERM');
    const outcome = await run.exit(30 * SECOND);
    expect(outcome.code, outcome.stderr).toBe(0);
    // No server name (SNI) is sent for an IP address: Node would warn (DEP0123).
    expect(outcome.stderr).not.toContain('DEP0123');
  });
});
