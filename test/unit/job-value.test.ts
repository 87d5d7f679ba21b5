import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, LAST_EXPIRY_MS, type Job } from '../../src/budget/job.js';
import { formatCents } from '../../src/budget/money.js';
import { splitBudget } from '../../src/budget/split-budget.js';
import { jobValue } from '../../src/sink/job-value.js';

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
