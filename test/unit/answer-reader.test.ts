import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readAllAnswered } from '../../src/budget/answer-reader.js';
import { matchAnswers, type DistributedJob } from '../../src/budget/distribution-check.js';
import { formatCents } from '../../src/budget/money.js';

// The fast reader of a service's answer must never disagree with JSON.parse + matchAnswers: where it answers,
// every job is ok with the same cents; where the general path finds anything wrong, it gives up.

/** A request's jobs (distinct job_ids) and, for each, amounts adding up to its budget. */
const answeredJobs = fc
  .uniqueArray(
    fc.record({
      jobId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.string({ maxLength: 8 })),
      daily: fc.array(fc.integer({ min: 0, max: 99_999_999 }), { minLength: 1, maxLength: 20 }),
    }),
    { selector: (job) => job.jobId, minLength: 1, maxLength: 30 },
  )
  .map((entries) =>
    entries.map(({ jobId, daily }) => ({
      job: { jobId, daysOnline: daily.length, budgetCents: daily.reduce((sum, cents) => sum + cents, 0) } satisfies DistributedJob,
      daily,
    })),
  );

/** What the general path says, or undefined when it fails the whole batch or any job. */
function generalPath(text: string, jobs: DistributedJob[]): number[][] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const matched = matchAnswers(jobs, parsed);
  if (!matched.ok || matched.strays.length > 0) return undefined;
  const cents: number[][] = [];
  for (const check of matched.perJob) {
    if (!check.ok) return undefined;
    cents.push(check.dailyCents);
  }
  return cents;
}

/** Mutations of a correct answer's text, each of which the general path may or may not accept. */
const MUTATIONS: Array<(text: string) => string> = [
  (text) => text.replace('"daily"', '"error":"no","daily"'),
  (text) => text.replace(/"(\d+)\.(\d\d)"/, '"$1.$2 "'),
  (text) => text.replace(/"(\d+)\.(\d\d)"/, '$1.$2'),
  (text) => text.replace(/"(\d+)\.(\d)(\d)"/, '"$1.$2"'),
  (text) => text.replace(/"(\d+)\.(\d\d)"/, '"-$1.$2"'),
  (text) => text.replace(/"(\d+)\.(\d\d)"/, '"0$1.$2"'),
  (text) => text.replace(/,"(\d+)\.(\d\d)"\]/, ']'),
  (text) => text.replace('{"job_id"', '{"extra":1,"job_id"'),
  (text) => text.replace(']}', '],"more":true}'),
  (text) => text.replace(/\{"job_id":"([^"]*)"/, '{"job_id":"$1x"'),
  (text) => text.replace(/\},\{/, '},{"job_id":"stray","daily":["1.00"]},{'),
  (text) => text.replace(/"results":\[\{[^{}]*\},?/, '"results":['),
  (text) => text.replaceAll(',', ' ,\n\t'),
  (text) => text.replaceAll(':', ' : '),
  (text) => `  ${text}\n`,
  (text) => text.replace('"results"', '"result\\u0073"'),
];

describe('readAllAnswered', () => {
  it('reads every correct answer, in any order and with any whitespace, as the general path does', () => {
    fc.assert(
      fc.property(answeredJobs, fc.boolean(), fc.boolean(), (entries, reversed, spaced) => {
        const jobs = entries.map((entry) => entry.job);
        const results = entries.map(({ job, daily }) => ({ job_id: job.jobId, daily: daily.map(formatCents) }));
        if (reversed) results.reverse();
        const text = JSON.stringify({ results }, null, spaced ? 2 : undefined);
        const general = generalPath(text, jobs);
        expect(general).toEqual(entries.map((entry) => entry.daily));
        const fast = readAllAnswered(Buffer.from(text), jobs);
        // A job_id that is not printable ASCII, or that JSON writes with an escape, is left to the general path.
        if (jobs.every((job) => /^[\x20-\x7e]*$/.test(job.jobId) && JSON.stringify(job.jobId) === `"${job.jobId}"`))
          expect(fast).toEqual(general);
        else if (fast !== undefined) expect(fast).toEqual(general);
      }),
      { numRuns: 2000 },
    );
  });

  it('never answers where the general path refuses a job or the batch, and agrees where it answers', () => {
    fc.assert(
      fc.property(answeredJobs, fc.integer({ min: 0, max: MUTATIONS.length - 1 }), (entries, which) => {
        const jobs = entries.map((entry) => entry.job);
        const results = entries.map(({ job, daily }) => ({ job_id: job.jobId, daily: daily.map(formatCents) }));
        const text = MUTATIONS[which]!(JSON.stringify({ results }));
        const fast = readAllAnswered(Buffer.from(text), jobs);
        if (fast !== undefined) expect(fast).toEqual(generalPath(text, jobs));
      }),
      { numRuns: 5000 },
    );
  });

  it('gives up on a wrong count, a wrong sum, a missing or doubled answer, and text that is not the answer', () => {
    const jobs: DistributedJob[] = [
      { jobId: 'a', daysOnline: 2, budgetCents: 300 },
      { jobId: 'b', daysOnline: 1, budgetCents: 5 },
    ];
    const ok = '{"results":[{"job_id":"a","daily":["2.00","1.00"]},{"daily":["0.05"],"job_id":"b"}]}';
    expect(readAllAnswered(Buffer.from(ok), jobs)).toEqual([[200, 100], [5]]);
    for (const text of [
      '{"results":[{"job_id":"a","daily":["3.00"]},{"job_id":"b","daily":["0.05"]}]}',
      '{"results":[{"job_id":"a","daily":["2.00","1.01"]},{"job_id":"b","daily":["0.05"]}]}',
      '{"results":[{"job_id":"a","daily":["2.00","1.00"]}]}',
      '{"results":[{"job_id":"a","daily":["2.00","1.00"]},{"job_id":"a","daily":["2.00","1.00"]},{"job_id":"b","daily":["0.05"]}]}',
      '{"results":[{"job_id":"a","daily":["2.00","1.00"]},{"job_id":"b","error":"no"}]}',
      ok.slice(0, -1),
      `${ok}x`,
      '',
    ]) {
      expect(readAllAnswered(Buffer.from(text), jobs), text).toBeUndefined();
    }
  });
});
