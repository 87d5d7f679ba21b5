import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkDistribution,
  matchAnswers,
  NO_ANSWER,
  NOT_A_RESULTS_RESPONSE,
  NOT_AN_ANSWER,
  type DistributedJob,
} from '../../src/budget/distribution-check.js';
import { splitBudget } from '../../src/budget/split-budget.js';

/** numeric(14,2) at its largest (db/migrations/0001_create_jobs.sql), 999 999 999 999.99, in cents. */
const MAX_BUDGET_CENTS = 99_999_999_999_999;
const MAX_DAYS_ONLINE = 3650;

const job = (jobId: string, budgetCents: number, daysOnline: number): DistributedJob => ({ jobId, budgetCents, daysOnline });
const J1 = job('J-1', 10_000, 3);

// The oracle reads amounts with BigInt, independently of the code under test.
function centsOf(text: string): number {
  const match = /^(\d+)\.(\d{2})$/.exec(text);
  if (match === null) throw new Error(`not an amount with two decimals: ${JSON.stringify(text)}`);
  return Number(BigInt(match[1]!) * 100n + BigInt(match[2]!));
}

describe('checkDistribution', () => {
  it('accepts amounts that add up to the budget and returns them in cents, day 0 first', () => {
    expect(checkDistribution(J1, { job_id: 'J-1', daily: ['50.00', '30.00', '20.00'] })).toEqual({
      ok: true,
      dailyCents: [5000, 3000, 2000],
    });
  });

  it('accepts what the built-in split gives, for any budget the table holds and any days_online', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: MAX_BUDGET_CENTS }), fc.constantFrom(0, 1, MAX_BUDGET_CENTS)),
        fc.integer({ min: 1, max: MAX_DAYS_ONLINE }),
        (cents, days) => {
          const daily = splitBudget(cents, days);
          expect(checkDistribution(job('J', cents, days), { job_id: 'J', daily })).toEqual({ ok: true, dailyCents: daily.map(centsOf) });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts a zero budget as zero amounts, and refuses a cent on a zero budget', () => {
    expect(checkDistribution(job('Z', 0, 2), { job_id: 'Z', daily: ['0.00', '0.00'] })).toEqual({ ok: true, dailyCents: [0, 0] });
    expect(checkDistribution(job('Z', 0, 2), { job_id: 'Z', daily: ['0.01', '0.00'] })).toEqual({
      ok: false,
      reason: 'the amounts add up to 0.01, not the budget 0.00',
    });
  });

  it('accepts one day holding the whole budget, the largest the table allows', () => {
    expect(checkDistribution(job('B', MAX_BUDGET_CENTS, 1), { job_id: 'B', daily: ['999999999999.99'] })).toEqual({
      ok: true,
      dailyCents: [MAX_BUDGET_CENTS],
    });
  });

  it('accepts 3650 days with the whole largest budget on the last day, and refuses it one cent short', () => {
    const daily: string[] = Array.from({ length: MAX_DAYS_ONLINE }, (_, day) => (day === MAX_DAYS_ONLINE - 1 ? '999999999999.99' : '0.00'));
    const checked = checkDistribution(job('L', MAX_BUDGET_CENTS, MAX_DAYS_ONLINE), { job_id: 'L', daily });
    expect(checked.ok && checked.dailyCents.length).toBe(MAX_DAYS_ONLINE);
    expect(checked.ok && checked.dailyCents[MAX_DAYS_ONLINE - 1]).toBe(MAX_BUDGET_CENTS);
    daily[MAX_DAYS_ONLINE - 1] = '999999999999.98';
    expect(checkDistribution(job('L', MAX_BUDGET_CENTS, MAX_DAYS_ONLINE), { job_id: 'L', daily })).toEqual({
      ok: false,
      reason: 'the amounts add up to 999999999999.98, not the budget 999999999999.99',
    });
  });

  it('sums exactly where a double would round: amounts past 2^53 cents are reported to the cent', () => {
    // 3650 * 9 999 999 999 999.99 = 36 499 999 999 999 963.50, beyond any double's cent precision.
    const daily = Array.from({ length: MAX_DAYS_ONLINE }, () => '9999999999999.99');
    expect(checkDistribution(job('L', MAX_BUDGET_CENTS, MAX_DAYS_ONLINE), { job_id: 'L', daily })).toEqual({
      ok: false,
      reason: 'the amounts add up to 36499999999999963.50, not the budget 999999999999.99',
    });
    expect(checkDistribution(job('H', 100, 2), { job_id: 'H', daily: ['123456789012345678901234567890.00', '1.00'] })).toEqual({
      ok: false,
      reason: 'the amounts add up to 123456789012345678901234567891.00, not the budget 1.00',
    });
  });

  it('accepts leading zeros, even many of them, and returns the cents', () => {
    const checked = checkDistribution(job('Z', 5000, 2), { job_id: 'Z', daily: ['0000000000000000000049.99', '00.01'] });
    expect(checked).toEqual({ ok: true, dailyCents: [4999, 1] });
  });

  it.each([
    [['50.00', '50.00'], 'distribution service answered 2 amounts for 3 days online'],
    [['100.00'], 'distribution service answered 1 amount for 3 days online'],
    [[], 'distribution service answered 0 amounts for 3 days online'],
    [['25.00', '25.00', '25.00', '25.00'], 'distribution service answered 4 amounts for 3 days online'],
  ])('refuses the wrong number of amounts %j', (daily, reason) => {
    expect(checkDistribution(J1, { job_id: 'J-1', daily })).toEqual({ ok: false, reason });
  });

  it.each([
    [['50.00', '-1.00', '51.00'], 'amount 2 ("-1.00") is negative'],
    [['33.333', '33.33', '33.34'], 'amount 1 ("33.333") is not a decimal with two places'],
    [['50', '30.00', '20.00'], 'amount 1 ("50") is not a decimal with two places'],
    [['50.0', '30.00', '20.00'], 'amount 1 ("50.0") is not a decimal with two places'],
    [['.50', '30.00', '69.50'], 'amount 1 (".50") is not a decimal with two places'],
    [['50,00', '30.00', '20.00'], 'amount 1 ("50,00") is not a decimal with two places'],
    [['+50.00', '30.00', '20.00'], 'amount 1 ("+50.00") is not a decimal with two places'],
    [['50.00', '30.00', ' 20.00'], 'amount 3 (" 20.00") is not a decimal with two places'],
    [['50.00', '30.00', '20.00\n'], 'amount 3 ("20.00\\n") is not a decimal with two places'],
    [['50.00', '30.00', '2e1.00'], 'amount 3 ("2e1.00") is not a decimal with two places'],
    [['-0.00', '50.00', '50.00'], 'amount 1 ("-0.00") is not a decimal with two places'],
    [['50.00', 30, '20.00'], 'amount 2 (30) is a JSON number: the protocol sends amounts as strings such as "50.00"'],
    [['50.00', 30.0, '20.00'], 'amount 2 (30) is a JSON number: the protocol sends amounts as strings such as "50.00"'],
    [['50.00', null, '20.00'], 'amount 2 (null) is not a string such as "50.00"'],
    [['50.00', ['30.00'], '20.00'], 'amount 2 (["30.00"]) is not a string such as "50.00"'],
    [['50.00', '30.00', '19.99'], 'the amounts add up to 99.99, not the budget 100.00'],
    [['50.00', '30.00', '20.01'], 'the amounts add up to 100.01, not the budget 100.00'],
  ])('refuses %j', (daily, reason) => {
    expect(checkDistribution(J1, { job_id: 'J-1', daily })).toEqual({ ok: false, reason });
  });

  it('quotes at most 40 characters of a bad amount', () => {
    const checked = checkDistribution(job('Q', 0, 1), { job_id: 'Q', daily: ['x'.repeat(10_000)] });
    expect(checked).toEqual({ ok: false, reason: `amount 1 ("${'x'.repeat(38)}…) is not a decimal with two places` });
  });

  it('reports the service refusing the job with its reason', () => {
    expect(checkDistribution(J1, { job_id: 'J-1', error: 'budget below the minimum' })).toEqual({
      ok: false,
      reason: 'the service refused the job: budget below the minimum',
    });
    expect(checkDistribution(J1, { job_id: 'J-1', error: '' })).toEqual({
      ok: false,
      reason: 'the service refused the job without a reason',
    });
    expect(checkDistribution(J1, { job_id: 'J-1', error: { code: 7 } })).toEqual({
      ok: false,
      reason: 'the service refused the job: {"code":7}',
    });
  });

  it.each([
    [undefined, NO_ANSWER],
    [null, NOT_AN_ANSWER],
    ['50.00', NOT_AN_ANSWER],
    [['50.00', '30.00', '20.00'], NOT_AN_ANSWER],
    [{ job_id: 'J-1' }, NOT_AN_ANSWER],
    [{ job_id: 'J-1', amounts: ['50.00', '30.00', '20.00'] }, NOT_AN_ANSWER],
    [{ daily: ['50.00', '30.00', '20.00'] }, 'the answer has no job_id string (got undefined)'],
    [{ job_id: 1, daily: ['50.00', '30.00', '20.00'] }, 'the answer has no job_id string (got 1)'],
    [{ job_id: 'J-2', daily: ['50.00', '30.00', '20.00'] }, 'the answer is for job_id "J-2", not "J-1"'],
    [{ job_id: 'j-1', error: 'no' }, 'the answer is for job_id "j-1", not "J-1"'],
    [
      { job_id: 'J-1', daily: ['50.00', '30.00', '20.00'], error: 'no' },
      'the answer has both daily and error: the service must send one of them',
    ],
    [{ job_id: 'J-1', daily: '50.00,30.00,20.00' }, 'daily is not an array of amounts (got "50.00,30.00,20.00")'],
    [{ job_id: 'J-1', daily: null }, 'daily is not an array of amounts (got null)'],
  ])('refuses the answer %j', (answer, reason) => {
    expect(checkDistribution(J1, answer)).toEqual({ ok: false, reason });
  });

  it.each([
    [job('J', -1, 1), 'budgetCents must be a non-negative whole number of cents, got -1'],
    [job('J', 0.5, 1), 'budgetCents must be a non-negative whole number of cents, got 0.5'],
    [job('J', 100, 0), 'daysOnline must be an integer between 1 and 3650, got 0'],
    [job('J', 100, 3651), 'daysOnline must be an integer between 1 and 3650, got 3651'],
  ])('throws on a job parseJob would have set aside: %j', (badJob, message) => {
    expect(() => checkDistribution(badJob, { job_id: 'J', daily: ['1.00'] })).toThrow(new RangeError(message));
  });
});

describe('matchAnswers', () => {
  const jobs = [job('J-1', 10_000, 3), job('J-2', 100, 1), job('J-3', 0, 2)];
  const answerJ1 = { job_id: 'J-1', daily: ['50.00', '30.00', '20.00'] };
  const answerJ2 = { job_id: 'J-2', daily: ['1.00'] };
  const answerJ3 = { job_id: 'J-3', daily: ['0.00', '0.00'] };
  const allGood = [
    { ok: true, dailyCents: [5000, 3000, 2000] },
    { ok: true, dailyCents: [100] },
    { ok: true, dailyCents: [0, 0] },
  ];

  it('matches results in any order to the jobs, in the jobs order', () => {
    for (const results of [
      [answerJ1, answerJ2, answerJ3],
      [answerJ3, answerJ1, answerJ2],
      [answerJ2, answerJ3, answerJ1],
    ]) {
      expect(matchAnswers(jobs, { results })).toEqual({ ok: true, perJob: allGood, strays: [] });
    }
  });

  it('gives each job its own reason and leaves the others alone', () => {
    const results = [{ job_id: 'J-2', error: 'over the limit' }, answerJ1, { job_id: 'J-3', daily: ['0.00'] }];
    expect(matchAnswers(jobs, { results })).toEqual({
      ok: true,
      perJob: [
        { ok: true, dailyCents: [5000, 3000, 2000] },
        { ok: false, reason: 'the service refused the job: over the limit' },
        { ok: false, reason: 'distribution service answered 1 amount for 2 days online' },
      ],
      strays: [],
    });
  });

  it('reports a job without a result as missing', () => {
    expect(matchAnswers(jobs, { results: [answerJ3, answerJ1] })).toEqual({
      ok: true,
      perJob: [allGood[0], { ok: false, reason: NO_ANSWER }, allGood[2]],
      strays: [],
    });
  });

  it('refuses a job answered twice, even twice the same', () => {
    expect(matchAnswers(jobs, { results: [answerJ1, answerJ2, answerJ3, answerJ2] })).toEqual({
      ok: true,
      perJob: [allGood[0], { ok: false, reason: 'the service answered 2 times for this job; one answer is expected' }, allGood[2]],
      strays: [],
    });
  });

  it('reports results for no job of the batch as strays, by position', () => {
    const results = [answerJ1, { job_id: 'J-9', daily: ['1.00'] }, answerJ2, { daily: ['1.00'] }, 'J-3', answerJ3];
    expect(matchAnswers(jobs, { results })).toEqual({
      ok: true,
      perJob: allGood,
      strays: [
        'result 2 is for job_id "J-9", which is not in the batch',
        'result 4 has no job_id string: {"daily":["1.00"]}',
        'result 5 has no job_id string: "J-3"',
      ],
    });
  });

  it('gives every job NO_ANSWER for an empty results array, and an empty batch nothing', () => {
    expect(matchAnswers(jobs, { results: [] })).toEqual({
      ok: true,
      perJob: jobs.map(() => ({ ok: false, reason: NO_ANSWER })),
      strays: [],
    });
    expect(matchAnswers([], { results: [] })).toEqual({ ok: true, perJob: [], strays: [] });
  });

  it.each([[null], [[answerJ1, answerJ2, answerJ3]], ['ok'], [{}], [{ results: { 'J-1': answerJ1 } }], [{ result: [answerJ1] }]])(
    'fails the whole batch for the response %j',
    (response) => {
      expect(matchAnswers(jobs, response)).toEqual({ ok: false, reason: NOT_A_RESULTS_RESPONSE });
    },
  );

  it('throws when the batch holds a job_id twice, since the answers could not be told apart', () => {
    expect(() => matchAnswers([jobs[0]!, jobs[0]!], { results: [] })).toThrow(
      new RangeError('job_id "J-1" is twice in the batch: send one entry per job_id (its latest row) per request'),
    );
  });
});
