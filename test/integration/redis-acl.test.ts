import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, runCli, startCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Issue 13: `budget-cdc redis-acl` prints the ACL SETUSER line of a least-privilege Redis user. Applied with
// redis-cli to a Redis of this test's own (ACL LOG then holds only what this user was refused), the pipeline and
// the operator commands run as that user with nothing refused, and commands or keys outside the line are.

const SECOND = 1000;
const USER = 'budget_cdc';
const ROWS = 1500;

/** Sends `line` to redis-cli on `port` as a user types it, and returns what redis-cli printed. */
function applyWithRedisCli(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-p', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('error', reject);
    child.once('close', () => resolve(output.trim()));
    child.stdin.end(`${line}\n`);
  });
}

/**
 * What ACL LOG says the server refused, as "reason object" pairs, less CLIENT SETINFO: ioredis sends it on
 * connect and ignores a refusal, and the line cannot grant it (Redis before 7.2 rejects a line naming it).
 */
async function refusedCommandsOf(admin: Redis): Promise<string[]> {
  const entries = (await admin.call('ACL', 'LOG')) as unknown[][];
  return entries
    .map((entry) => {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
      return `${String(fields.get('reason'))} ${String(fields.get('object'))}`;
    })
    .filter((refusal) => refusal !== 'command client|setinfo');
}

describe('budget-cdc redis-acl: a Redis user with only what budget-cdc needs', () => {
  const password = `acl-${randomBytes(6).toString('hex')}`;
  let server: RedisServer;
  let fx: PipelineFixture;
  let dir: string;
  let passwordFile: string;
  let line: string;
  let userUrl: string;
  let runner: CliProcess | undefined;
  /** Connects as the ACL user. */
  let asUser: Redis;
  const refusedCommands = () => refusedCommandsOf(fx.redis);

  beforeAll(async () => {
    server = await startRedis();
    fx = await makePipelineFixture(inject('databaseUrl'), server.url, 'redisacl');
    dir = await mkdtemp(join(tmpdir(), 'budget-cdc-redis-acl-'));
    passwordFile = join(dir, 'redis-password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    userUrl = `redis://${USER}:${password}@127.0.0.1:${server.port}`;
  }, 60 * SECOND);

  afterAll(async () => {
    await killLiveCliProcesses();
    asUser?.disconnect();
    await fx?.close();
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('prints one ACL SETUSER line: the key prefix and budget-cdc:* only, no channels, the password as its SHA-256', async () => {
    const { code, stdout, stderr } = await runCli(['redis-acl', '--redis-password-file', passwordFile], fx.cliEnv());
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.split('\n')).toHaveLength(2);
    line = stdout.trim();
    const words = line.split(' ');
    expect(words.slice(0, 5)).toEqual(['ACL', 'SETUSER', USER, 'reset', 'on']);
    expect(words).toContain(`#${createHash('sha256').update(password).digest('hex')}`);
    expect(stdout).not.toContain(password);
    expect(words.filter((word) => word.startsWith('~'))).toEqual([`~${fx.config.keyPrefix}*`, '~budget-cdc:*']);
    expect(words).toContain('resetchannels');
    expect(words.filter((word) => word.startsWith('&') || word === 'allchannels' || word === 'allkeys')).toEqual([]);
    expect(words).toContain('-@all');
    expect(words.filter((word) => word.startsWith('+@'))).toEqual([]);
    // One Redis, no replicas asked for, no Sentinels: no WAIT, ROLE or CLUSTER.
    expect(words.filter((word) => /^\+(wait|role|cluster|asking)/.test(word))).toEqual([]);
  });

  it('is applied by redis-cli as printed', async () => {
    expect(await applyWithRedisCli(server.port, line)).toBe('OK');
    asUser = new Redis(userUrl);
    expect(await asUser.ping()).toBe('PONG');
    const clients = (await fx.redis.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
    expect(clients).toContain(` user=${USER} `);
    // From here on, ACL LOG holds only what budget-cdc itself is refused.
    expect(await fx.redis.call('ACL', 'LOG', 'RESET')).toBe('OK');
  });

  it(
    'runs the pipeline and the operator commands as that user, with no command refused (ACL LOG stays empty)',
    async () => {
      const env = { ...fx.cliEnv(), REDIS_URL: userUrl, LOG_LEVEL: 'info' };
      await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'acl-' || g, 3, 9.00 from generate_series(1, ${ROWS}) g`);
      runner = startCli(['run', '--http-port', '0'], env);
      await waitFor(
        async () => {
          if (runner!.child.exitCode !== null) throw new Error(`run exited: ${runner!.output().stderr}`);
          return (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1;
        },
        { timeoutMs: 60 * SECOND, message: 'the initial load as the ACL user' },
      );
      await fx.sql.query(
        `insert into jobs (job_id, days_online, budget) select 'acl-new-' || g, 2, 4.00 from generate_series(1, ${ROWS}) g`,
      );
      await fx.sql.query(`update jobs set budget = 12.00 where job_id like 'acl-1%'`);
      await fx.sql.query(`delete from jobs where job_id like 'acl-2%'`);
      await fx.waitForConfirmed();
      expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
      expect(await fx.redis.dbsize()).toBeGreaterThan(ROWS);

      // TRUNCATE removes keys by SCAN and UNLINK.
      await fx.sql.query('truncate jobs');
      await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('acl-after-truncate', 2, 4.00)`);
      await fx.waitForConfirmed();
      expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);

      const writers = ((await fx.redis.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string)
        .split('\n')
        .filter((client) => client.includes(` name=budget-cdc-writer-${fx.config.slotName} `));
      expect(writers.length).toBeGreaterThan(0);
      for (const writer of writers) expect(writer).toContain(` user=${USER} `);

      const status = await runCli(['status', '--json'], env);
      expect(status.code, status.stderr + status.stdout).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ redis: { reachable: true, deadLetters: 0 } });
      const inspect = await runCli(['inspect', 'acl-after-truncate'], env);
      expect(inspect.code, inspect.stderr + inspect.stdout).toBe(0);
      const deadLetters = await runCli(['dead-letters'], env);
      expect(deadLetters.code, deadLetters.stderr).toBe(0);

      expect(await refusedCommands()).toEqual([]);
    },
    120 * SECOND,
  );

  it('refuses commands, keys and channels outside the line with NOPERM', async () => {
    await expect(asUser.flushall()).rejects.toThrow(/NOPERM/);
    await expect(asUser.call('CONFIG', 'GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
    await expect(asUser.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(asUser.set('other:key', 'x')).rejects.toThrow(/NOPERM/);
    await expect(asUser.get('other:key')).rejects.toThrow(/NOPERM/);
    await expect(asUser.publish('news', 'x')).rejects.toThrow(/NOPERM/);
    // The same SET on a key under the prefix is allowed: the refusals above are about the command or the key.
    expect(await asUser.set(`${fx.config.keyPrefix}acl-probe`, 'x')).toBe('OK');
    expect(await asUser.del(`${fx.config.keyPrefix}acl-probe`)).toBe(1);
    expect(await fx.redis.exists('other:key')).toBe(0);
  });

  it('run as that user stops on SIGTERM with exit 0', async () => {
    runner!.child.kill('SIGTERM');
    const { code, stderr } = await runner!.exit(15 * SECOND);
    expect(code, stderr).toBe(0);
    expect(stderr).not.toContain(password);
    expect(stderr).not.toContain('NOPERM');
  });
});
