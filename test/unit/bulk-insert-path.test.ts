import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, LAST_EXPIRY_MS, type JobFigures } from '../../src/budget/job.js';
import { parseJob, readJobFigures } from '../../src/replication/job-row.js';
import { formatCents } from '../../src/budget/money.js';
import { RowError } from '../../src/errors.js';
import type { JobColumnRanges, JobRow } from '../../src/replication/job-changes.js';
import { isPlainJobId, jobValue } from '../../src/sink/job-value.js';
import { WriteBatch } from '../../src/sink/write-batch.js';
import { decimalDigits, writeDecimal } from '../../src/sink/ascii-bytes.js';

// The bulk-load path reads rows and writes SETs straight from the message bytes. Each of its parts must give
// what the general path (text → parseJob → jobValue → set) gives, or decline so that the general path decides.

/** The row's texts laid out in one buffer, as in a message, with the ranges locateInsert would record. */
function rowBytes(row: JobRow): { bytes: Buffer; ranges: JobColumnRanges } {
  const parts = [row.jobId, row.daysOnline, row.budget, row.createdAt].map((text) => Buffer.from(text));
  const bytes = Buffer.concat([Buffer.from('xx'), ...parts]);
  const ends: number[] = [];
  let at = 2;
  for (const part of parts) ends.push((at += part.length));
  const [jobIdEnd, daysOnlineEnd, budgetEnd, createdAtEnd] = ends as [number, number, number, number];
  return {
    bytes,
    ranges: {
      jobIdStart: 2,
      jobIdEnd,
      daysOnlineStart: jobIdEnd,
      daysOnlineEnd,
      budgetStart: daysOnlineEnd,
      budgetEnd,
      createdAtStart: budgetEnd,
      createdAtEnd,
    },
  };
}

/** created_at as PostgreSQL prints it with DateStyle ISO and TimeZone UTC (fraction without trailing zeros). */
function postgresUtcText(ms: number, extraMicros: number): string {
  const iso = new Date(ms).toISOString();
  const micros = (ms % 1000) * 1000 + extraMicros;
  const fraction = micros === 0 ? '' : '.' + String(micros).padStart(6, '0').replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction}+00`;
}

const figuresOf = (job: JobFigures): JobFigures => ({
  budgetCents: job.budgetCents,
  daysOnline: job.daysOnline,
  createdAtMs: job.createdAtMs,
  expiresAtMs: job.expiresAtMs,
});

describe('readJobFigures', () => {
  it('reads what parseJob reads from the texts PostgreSQL prints', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 99_999_999_999_999 }),
        fc.integer({ min: 1, max: 3650 }),
        fc.integer({ min: Date.UTC(1970, 0, 1), max: LAST_EXPIRY_MS - 3650 * DAY_MS }),
        fc.integer({ min: 0, max: 999 }),
        (budgetCents, daysOnline, createdAtMs, extraMicros) => {
          const row: JobRow = {
            jobId: 'j',
            daysOnline: String(daysOnline),
            budget: formatCents(budgetCents),
            createdAt: postgresUtcText(createdAtMs, extraMicros),
          };
          const { bytes, ranges } = rowBytes(row);
          const figures: JobFigures = { budgetCents: 0, daysOnline: 0, createdAtMs: 0, expiresAtMs: 0 };
          expect(readJobFigures(bytes, ranges, figures)).toBe(true);
          expect(figures).toEqual(figuresOf(parseJob(row)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('declines texts in another form, and rows parseJob sets aside, leaving them to parseJob', () => {
    const good: JobRow = { jobId: 'j', daysOnline: '3', budget: '100.00', createdAt: '2026-11-29 10:00:00+00' };
    const declined: Partial<JobRow>[] = [
      { daysOnline: '03' },
      { daysOnline: '+3' },
      { daysOnline: '0' },
      { daysOnline: '3651' },
      { daysOnline: '' },
      { budget: '0100.00' },
      { budget: '-1.00' },
      { budget: '100.0' },
      { budget: 'NaN' },
      { budget: '1000000000000.00' },
      { createdAt: 'infinity' },
      { createdAt: '2026-11-29T10:00:00Z' },
      { createdAt: '9999-12-30 00:00:00+00' }, // + 3 days is after the year 9999
    ];
    for (const change of declined) {
      const row = { ...good, ...change };
      const { bytes, ranges } = rowBytes(row);
      const figures: JobFigures = { budgetCents: 0, daysOnline: 0, createdAtMs: 0, expiresAtMs: 0 };
      expect(readJobFigures(bytes, ranges, figures), JSON.stringify(change)).toBe(false);
    }
    // Declined forms that are still valid give the same job through parseJob; the others are set aside.
    expect(parseJob({ ...good, budget: '0100.00' }).budgetCents).toBe(10_000);
    expect(() => parseJob({ ...good, createdAt: 'infinity' })).toThrow(RowError);
  });
});

describe('isPlainJobId', () => {
  it('accepts exactly the job_ids that JSON.stringify leaves as they are, in ASCII', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), (jobId) => {
        const bytes = Buffer.from(jobId);
        const plain = isPlainJobId(bytes, 0, bytes.length);
        const unescapedAscii = JSON.stringify(jobId) === `"${jobId}"` && /^[\x20-\x7e]*$/.test(jobId);
        expect(plain).toBe(unescapedAscii);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('WriteBatch#setJob', () => {
  it('writes the same bytes as set(key, jobValue(job), expiresAtMs)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[\x20-\x21\x23-\x5b\x5d-\x7e]{0,40}$/),
        fc.integer({ min: 0, max: 99_999_999_999_999 }),
        fc.integer({ min: 1, max: 3650 }),
        fc.integer({ min: Date.UTC(1970, 0, 1), max: LAST_EXPIRY_MS - 3650 * DAY_MS }),
        (jobId, budgetCents, daysOnline, createdAtMs) => {
          const job = { jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs: createdAtMs + daysOnline * DAY_MS };
          const viaBytes = new WriteBatch('dead-letters');
          const source = Buffer.from('..' + jobId + '..');
          viaBytes.setJob(Buffer.from('job:'), source, 2, 2 + jobId.length, job);
          const viaText = new WriteBatch('dead-letters');
          viaText.set('job:' + jobId, jobValue(job), job.expiresAtMs);
          expect(viaBytes.bytes.toString()).toBe(viaText.bytes.toString());
          expect(viaBytes.commands).toBe(1);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('setJobOf, for a job read as text, writes what set(key, jobValue(job), expiresAtMs) writes, for any job_id', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 30 }),
        fc.integer({ min: 0, max: 99_999_999 }),
        fc.integer({ min: 1, max: 3650 }),
        (jobId, budgetCents, daysOnline) => {
          const createdAtMs = Date.UTC(2026, 10, 29, 10);
          const job = { jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs: createdAtMs + daysOnline * DAY_MS };
          const viaJob = new WriteBatch('dead-letters');
          viaJob.setJobOf(Buffer.from('jöb:'), job);
          const viaText = new WriteBatch('dead-letters');
          viaText.set('jöb:' + jobId, jobValue(job), job.expiresAtMs);
          expect(viaJob.bytes.equals(viaText.bytes)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('grows the buffer for a value larger than it (a 3650-day job)', () => {
    const batch = new WriteBatch('dead-letters');
    const job = {
      jobId: 'long',
      budgetCents: 99_999_999_999_999,
      daysOnline: 3650,
      createdAtMs: Date.UTC(2026, 0, 1),
      expiresAtMs: Date.UTC(2026, 0, 1) + 3650 * DAY_MS,
    };
    for (let i = 0; i < 20; i++) batch.setJob(Buffer.from('job:'), Buffer.from('long'), 0, 4, job);
    const reference = new WriteBatch('dead-letters');
    reference.set('job:long', jobValue(job), job.expiresAtMs);
    expect(batch.bytes.toString()).toBe(reference.bytes.toString().repeat(20));
  });
});

describe('ascii-bytes', () => {
  it('writes and counts the digits of every safe integer as String() does', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 1_000_000_000 }), fc.maxSafeNat()), (value) => {
        const target = Buffer.alloc(20);
        const end = writeDecimal(target, 1, value);
        expect(target.toString('latin1', 1, end)).toBe(String(value));
        expect(decimalDigits(value)).toBe(String(value).length);
      }),
      { numRuns: 5000 },
    );
    for (const value of [0, 9, 10, 99_999_999, 100_000_000, 100_000_001, 10 ** 15, Number.MAX_SAFE_INTEGER]) {
      expect(decimalDigits(value)).toBe(String(value).length);
    }
  });
});
