import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, LAST_EXPIRY_MS, type Job } from '../../src/budget/job.js';
import { formatCents } from '../../src/budget/money.js';
import { splitBudget } from '../../src/budget/split-budget.js';
import { EVEN_SPLIT } from '../../src/budget/budget-strategy.js';
import { SlottedWriteBatch } from '../../src/sink/cluster-write-batch.js';
import { hashSlot } from '../../src/sink/hash-slot.js';
import { jobValue, jobValueWithDaily } from '../../src/sink/job-value.js';
import { WriteBatch } from '../../src/sink/write-batch.js';

// jobValue builds the JSON by hand for speed; it must equal what JSON.stringify gives for the contract.
describe('jobValue', () => {
  it('equals JSON.stringify of the contract object, field for field and in order', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.integer({ min: 0, max: 99_999_999_999_999 }),
        fc.integer({ min: 1, max: 3650 }),
        fc.integer({ min: Date.UTC(1970, 0, 1), max: LAST_EXPIRY_MS - 3650 * DAY_MS }),
        (jobId, budgetCents, daysOnline, createdAtMs) => {
          const job: Job = { jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs: createdAtMs + daysOnline * DAY_MS };
          const expected = JSON.stringify({
            job_id: jobId,
            budget: formatCents(budgetCents),
            days_online: daysOnline,
            created_at: new Date(createdAtMs).toISOString(),
            expires_at: new Date(job.expiresAtMs).toISOString(),
            daily: splitBudget(budgetCents, daysOnline),
          });
          expect(jobValue(job)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('formats instants on day and second boundaries like toISOString', () => {
    for (const ms of [0, 999, 1000, DAY_MS - 1, DAY_MS, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2028, 1, 29, 12, 0, 0, 5)]) {
      const job: Job = { jobId: 'j', budgetCents: 1, daysOnline: 1, createdAtMs: ms, expiresAtMs: ms + DAY_MS };
      expect(JSON.parse(jobValue(job)).created_at).toBe(new Date(ms).toISOString());
    }
  });
});

// A distribution service's amounts take the general path: the same JSON, with the service's daily amounts.
describe('jobValueWithDaily', () => {
  const jobArbitrary = fc
    .record({
      jobId: fc.string({ unit: 'grapheme', maxLength: 40 }),
      budgetCents: fc.integer({ min: 0, max: 99_999_999_999_999 }),
      daysOnline: fc.integer({ min: 1, max: 60 }),
      createdAtMs: fc.integer({ min: Date.UTC(1970, 0, 1), max: LAST_EXPIRY_MS - 3650 * DAY_MS }),
    })
    .map((fields): Job => ({ ...fields, expiresAtMs: fields.createdAtMs + fields.daysOnline * DAY_MS }));

  it('with the even split is byte for byte what the built-in value writer writes', async () => {
    await fc.assert(
      fc.asyncProperty(jobArbitrary, async (job) => {
        const [check] = await EVEN_SPLIT.distribute([job]);
        if (check === undefined || !check.ok) throw new Error('the even split refused a valid job');
        expect(jobValueWithDaily(job, check.dailyCents)).toBe(jobValue(job));
      }),
      { numRuns: 1000 },
    );
  });

  it('equals JSON.stringify of the contract object with the given amounts', () => {
    fc.assert(
      fc.property(
        jobArbitrary,
        fc.array(fc.integer({ min: 0, max: 99_999_999_999_999 }), { minLength: 1, maxLength: 60 }),
        (job, dailyCents) => {
          const expected = JSON.stringify({
            job_id: job.jobId,
            budget: formatCents(job.budgetCents),
            days_online: job.daysOnline,
            created_at: new Date(job.createdAtMs).toISOString(),
            expires_at: new Date(job.expiresAtMs).toISOString(),
            daily: dailyCents.map(formatCents),
          });
          expect(jobValueWithDaily(job, dailyCents)).toBe(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

// The service path writes values straight into the batch buffer; the bytes must be those of the string path.
describe('WriteBatch#setJobWithDaily', () => {
  const PREFIX = Buffer.from('job:');
  const jobIds = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9_:{}-]{1,30}$/), // plain: the byte path
    fc.string({ unit: 'grapheme', maxLength: 20 }), // anything, quotes and multibyte: the string path
  );

  it('writes the same command as SET key jobValueWithDaily PXAT, on one Redis and on a cluster', () => {
    fc.assert(
      fc.property(
        jobIds,
        fc.integer({ min: 0, max: 99_999_999_999_999 }),
        fc.array(fc.integer({ min: 0, max: 99_999_999 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: Date.UTC(1970, 0, 1), max: LAST_EXPIRY_MS - 3650 * DAY_MS }),
        (jobId, budgetCents, dailyCents, createdAtMs) => {
          const daysOnline = dailyCents.length;
          const job: Job = { jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs: createdAtMs + daysOnline * DAY_MS };
          const expected = new WriteBatch('dl');
          expected.set(`job:${jobId}`, jobValueWithDaily(job, dailyCents), job.expiresAtMs);
          const direct = new WriteBatch('dl');
          direct.setJobWithDaily(PREFIX, job, dailyCents);
          expect(direct.bytes.toString('latin1')).toBe(expected.bytes.toString('latin1'));
          expect(direct.commands).toBe(1);
          const slotted = new SlottedWriteBatch('dl', [], 1024);
          slotted.setJobWithDaily(PREFIX, job, dailyCents);
          expect(slotted.bytes.toString('latin1')).toBe(expected.bytes.toString('latin1'));
          expect(slotted.starts).toEqual([0]);
          expect(slotted.slots).toEqual([hashSlot(`job:${jobId}`)]);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
