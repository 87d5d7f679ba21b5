import { chmod } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { chownTree, postgresOwner } from '../../src/local/process-owner.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, runCli } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { makeCertificates, type CertificateFiles } from '../support/redis-tls.js';
import { makeTemporaryDir, removeTemporaryDir } from '../support/server-process.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// PostgreSQL over TLS, set in DATABASE_URL as libpq users write it: sslmode=verify-full with the CA
// (sslrootcert), for the pool and for the replication connection alike. pg treats sslmode=require as
// verify-full unless uselibpqcompat=true asks for libpq's meaning (encrypt, verify nothing).

const SECOND = 1000;
const PASSWORD = 'tls-secret-pw';

describe('PostgreSQL over TLS', () => {
  let certificateDir: string;
  let certificates: CertificateFiles;
  let server: PostgresServer;
  let fx: PipelineFixture;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    certificateDir = await makeTemporaryDir('budget-cdc-pg-tls-');
    certificates = await makeCertificates(certificateDir);
    // PostgreSQL reads its key only when the server's user owns it and nobody else may read it.
    await chmod(certificates.key, 0o600);
    const owner = postgresOwner();
    if (owner) chownTree(certificateDir, owner);
    server = await startPostgres({ extraSettings: { ssl: 'on', ssl_cert_file: certificates.cert, ssl_key_file: certificates.key } });
    fx = await makePipelineFixture(server.url, inject('redisUrl'), 'pgtls');
  }, 60 * SECOND);

  afterAll(async () => {
    await killLiveCliProcesses();
    await consumer?.stop();
    await fx?.close();
    await server?.stop();
    if (certificateDir !== undefined) await removeTemporaryDir(certificateDir);
  });

  /** The fixture's database URL with a password (trust ignores it; messages must not show it) and `params`. */
  function tlsUrl(params: string): string {
    const url = new URL(fx.config.databaseUrl);
    url.password = PASSWORD;
    return `${url.toString()}?${params}`;
  }

  it('streams with sslmode=verify-full and the CA, every connection of the consumer encrypted', async () => {
    consumer = await fx.startConsumer({ databaseUrl: tlsUrl(`sslmode=verify-full&sslrootcert=${certificates.ca}`) });
    // The slot and the first load first: rows inserted before the slot exists come through the load, which the slot's
    // confirmed position says nothing about.
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the initial load' });
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'tls-' || g, 3, g from generate_series(1, 2000) g`);
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id = 'tls-1'`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ backend_type: string; ssl: boolean }>(
        `select a.backend_type, s.ssl from pg_stat_activity a join pg_stat_ssl s using (pid)
         where a.application_name like 'budget-cdc%' and a.datname = $1`,
        [new URL(fx.config.databaseUrl).pathname.slice(1)],
      );
      expect(rows.some((row) => row.backend_type === 'walsender')).toBe(true);
      expect(rows.some((row) => row.backend_type === 'client backend')).toBe(true);
      expect(rows.every((row) => row.ssl)).toBe(true);
    } finally {
      await admin.end();
    }
  });

  it('status works with the same URL; sslmode=require with uselibpqcompat=true encrypts without verifying', async () => {
    const env = { ...fx.cliEnv(), DATABASE_URL: tlsUrl(`sslmode=verify-full&sslrootcert=${certificates.ca}`) };
    const verified = await runCli(['status'], env);
    expect(verified.code, verified.stderr).toBe(0);
    const required = await runCli(['status'], { ...env, DATABASE_URL: tlsUrl('sslmode=require&uselibpqcompat=true') });
    expect(required.code, required.stderr).toBe(0);
    for (const output of [verified, required]) expect(output.stdout + output.stderr).not.toContain(PASSWORD);
  });

  it('PGSSLMODE=verify-full with the CA in NODE_EXTRA_CA_CERTS works for a DATABASE_URL without ssl settings', async () => {
    const env = { ...fx.cliEnv(), DATABASE_URL: tlsUrl('').replace(/\?$/, ''), PGSSLMODE: 'verify-full' };
    const trusted = await runCli(['status'], { ...env, NODE_EXTRA_CA_CERTS: certificates.ca });
    expect(trusted.code, trusted.stderr).toBe(0);
    // Without the CA the same setting must refuse the server: it was the environment that asked for TLS.
    const untrusted = await runCli(['status'], { ...env, NODE_EXTRA_CA_CERTS: '' });
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stdout + untrusted.stderr).toMatch(/certificate/i);
  });

  it('without the CA, verify-full fails saying why, and never shows the password', async () => {
    const env = { ...fx.cliEnv(), DATABASE_URL: tlsUrl('sslmode=verify-full'), NODE_EXTRA_CA_CERTS: '' };
    const outcome = await runCli(['status'], env);
    expect(outcome.code).not.toBe(0);
    expect(outcome.stdout + outcome.stderr).toMatch(/certificate/i);
    expect(outcome.stdout + outcome.stderr).not.toContain(PASSWORD);
  });
});
