import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { loadCsv } from '../../src/load/load-csv.js';
import { LoadError } from '../../src/load/load-error.js';

const MIGRATION = new URL('../../db/migrations/0001_create_jobs.sql', import.meta.url);
const ROWS = 50_000;

// The shared globalSetup will provide databaseUrl; until then TEST_DATABASE_URL points at a running server.
const serverUrl = process.env.TEST_DATABASE_URL ?? inject('databaseUrl');
const databaseName = `load_csv_${randomBytes(6).toString('hex')}`;
const databaseUrl = withDatabaseName(serverUrl, databaseName);
let admin: pg.Client;
let db: pg.Client;
let dir: string;

beforeAll(async () => {
  if (serverUrl === undefined) throw new Error('set TEST_DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres');
  admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${databaseName}`);
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query(await readFile(MIGRATION, 'utf8'));
  dir = await mkdtemp(join(tmpdir(), 'load-csv-'));
});

afterAll(async () => {
  await db?.end();
  await admin?.query(`drop database if exists ${databaseName} with (force)`);
  await admin?.end();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await db.query('truncate jobs');
});

describe('loadCsv', () => {
  it('loads a 50,000-row file with created_at, values exact', async () => {
    const lines = ['job_id,days_online,budget,created_at'];
    for (let i = 1; i <= ROWS; i++) {
      lines.push(`job-${i},${(i % 3650) + 1},${i}.${String(i % 100).padStart(2, '0')},2024-03-01 10:00:00+05:30`);
    }
    const path = await writeCsv('big.csv', lines.join('\n') + '\n');

    const result = await loadCsv(databaseUrl, path, { progress: false });

    expect(result).toEqual({ rows: ROWS });
    expect(await countJobs()).toBe(ROWS);
    const sample = await db.query<{ days_online: number; budget: string; created_at: Date }>(
      `select days_online, budget::text as budget, created_at from jobs where job_id = 'job-12345'`,
    );
    expect(sample.rows).toHaveLength(1);
    expect(sample.rows[0]?.days_online).toBe((12345 % 3650) + 1);
    expect(sample.rows[0]?.budget).toBe('12345.45');
    expect(sample.rows[0]?.created_at.toISOString()).toBe('2024-03-01T04:30:00.000Z');
  });

  it('gives rows without created_at the time of the load', async () => {
    const path = await writeCsv('no-created-at.csv', 'job_id,days_online,budget\na,1,10.50\nb,30,0\n');
    const before = await serverNow();

    expect(await loadCsv(databaseUrl, path, { progress: false })).toEqual({ rows: 2 });

    const rows = await db.query<{ job_id: string; budget: string; created_at: Date }>(
      'select job_id, budget::text as budget, created_at from jobs order by job_id',
    );
    expect(rows.rows.map((r) => [r.job_id, r.budget])).toEqual([
      ['a', '10.50'],
      ['b', '0.00'],
    ]);
    for (const row of rows.rows) {
      expect(row.created_at.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(row.created_at.getTime()).toBeLessThanOrEqual((await serverNow()).getTime());
    }
  });

  it('accepts a UTF-8 byte order mark and CRLF line ends', async () => {
    const path = await writeCsv('windows.csv', '\uFEFFjob_id,days_online,budget\r\nw1,5,1.25\r\nw2,6,2.50\r\n');

    expect(await loadCsv(databaseUrl, path, { progress: false })).toEqual({ rows: 2 });
    expect(await countJobs()).toBe(2);
  });

  it.each([
    ['every field quoted (Python QUOTE_ALL)', '"job_id","days_online","budget"\r\n"q1","5","1.25"\r\n"q2","6","2.50"\r\n'],
    ['quoted names, a byte order mark (R write.csv, Excel)', '\uFEFF"job_id","days_online","budget"\nq1,5,1.25\nq2,6,2.50\n'],
  ])('reads the header as CSV: %s', async (_, content) => {
    const path = await writeCsv('quoted-header.csv', content);

    expect(await loadCsv(databaseUrl, path, { progress: false })).toEqual({ rows: 2 });
    const { rows } = await db.query<{ job_id: string; budget: string }>('select job_id, budget::text as budget from jobs order by job_id');
    expect(rows).toEqual([
      { job_id: 'q1', budget: '1.25' },
      { job_id: 'q2', budget: '2.50' },
    ]);
  });

  it("reads standard input when the source is '-', whatever the chunking", async () => {
    // The header is split over chunks and the last chunk starts mid-row.
    const chunks = ['job_', 'id,days_online,budget,created_at\ns1,1,1.00,2024-01-01T00:00:00Z\ns', '2,2,2.00,2024-01-02T00:00:00Z\n'];
    const stdin = Readable.from(chunks.map((c) => Buffer.from(c)));

    expect(await loadCsv(databaseUrl, '-', { progress: false, stdin })).toEqual({ rows: 2 });

    const rows = await db.query<{ job_id: string }>('select job_id from jobs order by job_id');
    expect(rows.rows.map((r) => r.job_id)).toEqual(['s1', 's2']);
  });

  it('draws a progress bar of bytes read when asked', async () => {
    const content = 'job_id,days_online,budget\np1,1,1\n';
    const path = await writeCsv('progress.csv', content);
    const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 120 }) as unknown as NodeJS.WriteStream;
    let drawn = '';
    (stderr as unknown as PassThrough).on('data', (chunk: Buffer) => (drawn += chunk.toString()));

    expect(await loadCsv(databaseUrl, path, { progress: true, stderr })).toEqual({ rows: 1 });

    expect(drawn).toContain('100%');
    expect(drawn).toContain(`${path}`);
  });

  it('fails on a value that is not an integer, names line 4 and loads nothing', async () => {
    const path = await writeCsv('bad-type.csv', 'job_id,days_online,budget\na,1,1\nb,2,2\nc,abc,3\nd,4,4\n');

    const error = await loadError(loadCsv(databaseUrl, path, { progress: false }));

    expect(error.line).toBe(4);
    expect(error.message).toContain('line 4');
    expect(error.message).toContain('invalid input syntax for type integer: "abc"');
    expect(error.message).toContain('column days_online');
    expect(error.message).not.toContain('\n');
    expect(error.cause).toBeInstanceOf(pg.DatabaseError);
    expect(await countJobs()).toBe(0);
  });

  it('fails on a row breaking the days_online check, names line 4 and loads nothing', async () => {
    const path = await writeCsv('bad-check.csv', 'job_id,days_online,budget\na,1,1\nb,2,2\nc,0,3\nd,4,4\n');

    const error = await loadError(loadCsv(databaseUrl, path, { progress: false }));

    expect(error.line).toBe(4);
    expect(error.message).toContain('line 4');
    expect(error.message).toContain('violates check constraint "jobs_days_online_check"');
    expect(await countJobs()).toBe(0);
  });

  it('fails on a duplicate job_id and loads nothing', async () => {
    const path = await writeCsv('duplicate.csv', 'job_id,days_online,budget\na,1,1\nb,2,2\nc,3,3\na,4,4\n');

    const error = await loadError(loadCsv(databaseUrl, path, { progress: false }));

    expect(error.line).toBe(5);
    expect(error.message).toContain('duplicate key value violates unique constraint "jobs_job_id_key"');
    expect(error.message).toContain('Key (job_id)=(a) already exists');
    expect(await countJobs()).toBe(0);
  });

  it('rejects a wrong header, naming the expected one', async () => {
    const path = await writeCsv('wrong-header.csv', 'id,days,budget\na,1,1\n');

    const error = await loadError(loadCsv(databaseUrl, path, { progress: false }));

    expect(error.line).toBe(1);
    expect(error.message).toContain('"job_id,days_online,budget"');
    expect(error.message).toContain('"job_id,days_online,budget,created_at"');
    expect(error.message).toContain('"id,days,budget"');
    expect(await countJobs()).toBe(0);
  });

  it('rejects an empty input', async () => {
    const error = await loadError(loadCsv(databaseUrl, '-', { progress: false, stdin: Readable.from([]) }));

    expect(error.message).toContain('the input is empty');
    expect(error.message).toContain('"job_id,days_online,budget"');
  });

  it('says a missing file cannot be read', async () => {
    const path = join(dir, 'missing.csv');

    const error = await loadError(loadCsv(databaseUrl, path, { progress: false }));

    expect(error.message).toBe(`cannot read ${path}: no such file`);
  });

  it('says when it cannot connect, without the password', async () => {
    const path = await writeCsv('unreachable.csv', 'job_id,days_online,budget\na,1,1\n');

    const error = await loadError(loadCsv('postgres://someone:secret@127.0.0.1:1/nowhere', path, { progress: false }));

    expect(error.message).toContain('cannot connect to PostgreSQL at postgres://someone:***@127.0.0.1:1/nowhere');
    expect(error.message).not.toContain('secret');
  });
});

function withDatabaseName(url: string | undefined, name: string): string {
  if (url === undefined) return '';
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function writeCsv(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

async function countJobs(): Promise<number> {
  const result = await db.query<{ count: string }>('select count(*) from jobs');
  return Number(result.rows[0]?.count);
}

async function serverNow(): Promise<Date> {
  const result = await db.query<{ now: Date }>('select clock_timestamp() as now');
  const now = result.rows[0]?.now;
  if (now === undefined) throw new Error('select clock_timestamp() returned no row');
  return now;
}

async function loadError(promise: Promise<unknown>): Promise<LoadError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LoadError);
  return error as LoadError;
}
