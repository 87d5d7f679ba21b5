import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, runCli } from '../support/cli-process.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Issue 13, "Passwords": `migrate --create-role` takes the role's password from a file or the environment, so it
// never needs to be on a command line (`ps` shows every process's arguments); --role-password still works, warned.

describe('migrate --create-role without the password on the command line', () => {
  const suffix = randomBytes(3).toString('hex');
  const role = `budget_pwfile_${suffix}`;
  const redisUrl = inject('redisUrl');
  let database: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'pwfile');
    dir = await mkdtemp(join(tmpdir(), 'budget-cdc-pwfile-'));
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await database?.drop();
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`drop role if exists ${role}`);
    await admin.end();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /**
   * True when the role's stored verifier is that of `password`. The test server trusts local connections, so a
   * login would succeed with any password; the SCRAM verifier (or md5 hash) is checked instead.
   */
  async function storedPasswordIs(password: string): Promise<boolean> {
    const stored = await passwordHash();
    const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(stored ?? '');
    if (scram === null)
      return (
        stored ===
        `md5${createHash('md5')
          .update(password + role)
          .digest('hex')}`
      );
    const salted = pbkdf2Sync(password, Buffer.from(scram[2]!, 'base64'), Number(scram[1]), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    return createHash('sha256').update(clientKey).digest('base64') === scram[3];
  }

  /** The role's stored password hash: it changes each time a password is set. */
  async function passwordHash(): Promise<string | null> {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ rolpassword: string | null }>('select rolpassword from pg_authid where rolname = $1', [role]);
      return rows[0]?.rolpassword ?? null;
    } finally {
      await admin.end();
    }
  }

  it('--role-password-file sets the password read from the file (its trailing line break left out), without a warning', async () => {
    const password = `from-file-${suffix}`;
    const file = join(dir, 'role-password');
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    const { code, stdout, stderr } = await runCli(['migrate', '--create-role', role, '--role-password-file', file], {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`role ${role} created: LOGIN REPLICATION, SELECT on jobs, password set`);
    expect(stderr).not.toContain('warning');
    expect(stdout + stderr).not.toContain(password);
    expect(await storedPasswordIs(password)).toBe(true);
    expect(await storedPasswordIs(`${password}\n`)).toBe(false);
  });

  it('BUDGET_CDC_ROLE_PASSWORD sets a new password, without a warning', async () => {
    const before = await passwordHash();
    const password = `from-env-${suffix}`;
    const { code, stdout, stderr } = await runCli(['migrate', '--create-role', role], {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      BUDGET_CDC_ROLE_PASSWORD: password,
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`role ${role} updated: LOGIN REPLICATION, SELECT on jobs, password set`);
    expect(stderr).not.toContain('warning');
    expect(await passwordHash()).not.toBe(before);
    expect(await storedPasswordIs(password)).toBe(true);
  });

  it('--role-password on the command line still works, with a warning that names the safer ways', async () => {
    const before = await passwordHash();
    const password = `from-argv-${suffix}`;
    const { code, stderr } = await runCli(['migrate', '--create-role', role, '--role-password', password], {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
    });
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('warning: --role-password is visible to every user of this machine (ps)');
    expect(stderr).toContain('pass --role-password-file PATH or set BUDGET_CDC_ROLE_PASSWORD instead');
    expect(stderr).not.toContain(password);
    expect(await passwordHash()).not.toBe(before);
    expect(await storedPasswordIs(password)).toBe(true);
  });

  it('a missing or empty password file is a usage error that says what to give, and changes nothing', async () => {
    const before = await passwordHash();
    const missing = await runCli(['migrate', '--create-role', role, '--role-password-file', join(dir, 'nope')], {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      `--role-password-file ${join(dir, 'nope')}: cannot read it (no such file): give a file holding the password`,
    );
    const empty = join(dir, 'empty');
    await writeFile(empty, '\n');
    const emptied = await runCli(['migrate', '--create-role', role, '--role-password-file', empty], {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
    });
    expect(emptied.code).toBe(2);
    expect(emptied.stderr).toContain(`--role-password-file ${empty} is empty: write the password into it`);
    expect(await passwordHash()).toBe(before);
  });
});
