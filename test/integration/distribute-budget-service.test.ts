import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatCents } from '../../src/budget/money.js';
import { splitBudget } from '../../src/budget/split-budget.js';
import {
  formatCents as formatBigCents,
  parseCreatedAtMs,
  weekdaySplitCents,
  type JobResult,
} from '../../examples/distribute-budget-service/rules.mjs';
import { startService, stopAllServices, type Service } from '../support/distribution-service.js';
import { waitFor } from '../support/wait-for.js';

// The example distribution service of issue 14 (examples/distribute-budget-service/), run as a user runs it:
// `node server.mjs` in a child process, spoken to over real HTTP. budget-cdc is not wired to it yet; these tests
// pin down the protocol (docs/distribution-protocol.md) and the test-only faults the consumer's tests will use.

const SECOND = 1000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_ID = 'urn:budget-cdc:distribution-protocol';
/** A client timeout far below the service's 10 s stall, so that the stall is seen without waiting it out. */
const CLIENT_TIMEOUT_MS = 1500;
const DEFAULT_STALL_MS = 10 * SECOND;
// Below the stall, so that a service that waits the stall out before exiting fails the test rather than passing late.
const SIGTERM_TEST_TIMEOUT_MS = 8 * SECOND;
const MONDAY = '2026-11-30T10:00:00.000Z';

interface RequestJob {
  job_id: string;
  budget: unknown;
  days_online: unknown;
  created_at?: unknown;
}

async function post(url: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  return { status: response.status, text: await response.text() };
}

/** POSTs jobs and returns the 200 answer's results keyed by job_id, after checking there is one per job. */
async function distribute(url: string, jobs: RequestJob[]): Promise<Map<string, JobResult>> {
  const { status, text } = await post(url, { jobs });
  expect(status, text).toBe(200);
  const { results } = JSON.parse(text) as { results: JobResult[] };
  expect(results.map((result) => result.job_id).sort()).toEqual(jobs.map((job) => job.job_id).sort());
  return new Map(results.map((result) => [result.job_id, result]));
}

function dailyOf(result: JobResult | undefined): string[] {
  if (result === undefined || !('daily' in result)) throw new Error(`expected daily amounts, got ${JSON.stringify(result)}`);
  return result.daily;
}

function errorOf(result: JobResult | undefined): string {
  if (result === undefined || !('error' in result)) throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  return result.error;
}

/** "123.45" as 12345n, read here rather than by the service's own parser, so the checks do not trust it. */
function amountCents(amount: string): bigint {
  const match = /^(0|[1-9]\d*)\.(\d{2})$/.exec(amount);
  if (match === null) throw new Error(`not a two-decimal amount: ${JSON.stringify(amount)}`);
  return BigInt(match[1]!) * 100n + BigInt(match[2]!);
}

const sumCents = (daily: string[]): bigint => daily.reduce((sum, amount) => sum + amountCents(amount), 0n);

function schemaValidator(definition: 'request' | 'response'): Ajv.ValidateFunction {
  const ajv = new Ajv({ allErrors: true });
  ajv.addSchema(JSON.parse(readFileSync(`${REPO_ROOT}docs/distribution-protocol.schema.json`, 'utf8')) as object);
  const validate = ajv.getSchema(`${SCHEMA_ID}#/definitions/${definition}`);
  if (validate === undefined) throw new Error(`the schema has no definitions/${definition}`);
  return validate;
}

afterAll(async () => {
  // Services of a test that failed before stopping its own.
  await stopAllServices();
});

describe('the even rule', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startService('even');
  });
  afterAll(async () => {
    expect(await service.stop()).toEqual({ code: 0, signal: null });
  });

  it("matches budget-cdc's own split byte for byte, remainders included", async () => {
    const budgetsCents = [0, 1, 2, 3, 99, 100, 101, 1234, 9999, 10_000, 10_001, 33_333, 123_456_789, 99_999_999_999_999];
    const days = [1, 2, 3, 7, 30, 365, 3650];
    const jobs = budgetsCents.flatMap((cents) =>
      days.map((daysOnline) => ({
        job_id: `J-${cents}-${daysOnline}`,
        budget: formatCents(cents),
        days_online: daysOnline,
        created_at: MONDAY,
      })),
    );
    // The range has to exercise the extra cents of the first days, or the comparison proves little.
    expect(budgetsCents.flatMap((cents) => days.filter((daysOnline) => cents % daysOnline > 1)).length).toBeGreaterThan(20);

    const results = await distribute(service.url, jobs);
    for (const cents of budgetsCents) {
      for (const daysOnline of days) {
        expect(dailyOf(results.get(`J-${cents}-${daysOnline}`)), `${cents} cents over ${daysOnline} days`).toEqual(
          splitBudget(cents, daysOnline),
        );
      }
    }
  });

  it('answers /distribute like /, several requests in flight at once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        distribute(`${service.url}/distribute`, [{ job_id: `J-${index}`, budget: `${index + 1}.00`, days_online: 3, created_at: MONDAY }]),
      ),
    );
    answers.forEach((results, index) => expect(dailyOf(results.get(`J-${index}`))).toEqual(splitBudget((index + 1) * 100, 3)));
  });

  it('keeps connections alive: a second request reuses the socket', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = () =>
      new Promise<{ reused: boolean; status: number | undefined }>((resolve, reject) => {
        const body = JSON.stringify({ jobs: [{ job_id: 'J-1', budget: '1.00', days_online: 1, created_at: MONDAY }] });
        const request = httpRequest(
          `${service.url}/`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (response) => {
            response.resume();
            response.once('end', () => resolve({ reused: request.reusedSocket, status: response.statusCode }));
          },
        );
        request.once('error', reject);
        request.end(body);
      });
    try {
      expect(await send()).toEqual({ reused: false, status: 200 });
      expect(await send()).toEqual({ reused: true, status: 200 });
    } finally {
      agent.destroy();
    }
  });

  it('refuses per job a budget, days_online or created_at it cannot read, and answers the good jobs', async () => {
    const good = { job_id: 'J-good', budget: '10.00', days_online: 3, created_at: MONDAY };
    const bad: [RequestJob, string][] = [
      [{ job_id: 'J-fraction-of-cent', budget: '12.345', days_online: 3, created_at: MONDAY }, 'budget'],
      [{ job_id: 'J-negative', budget: '-1.00', days_online: 3, created_at: MONDAY }, 'budget'],
      [{ job_id: 'J-words', budget: 'ten', days_online: 3, created_at: MONDAY }, 'budget'],
      [{ job_id: 'J-number', budget: 100, days_online: 3, created_at: MONDAY }, 'budget'],
      [{ job_id: 'J-empty', budget: '', days_online: 3, created_at: MONDAY }, 'budget'],
      [{ job_id: 'J-zero-days', budget: '1.00', days_online: 0, created_at: MONDAY }, 'days_online'],
      [{ job_id: 'J-too-many-days', budget: '1.00', days_online: 3651, created_at: MONDAY }, 'days_online'],
      [{ job_id: 'J-half-day', budget: '1.00', days_online: 2.5, created_at: MONDAY }, 'days_online'],
      [{ job_id: 'J-days-text', budget: '1.00', days_online: '3', created_at: MONDAY }, 'days_online'],
      [{ job_id: 'J-no-created-at', budget: '1.00', days_online: 3 }, 'created_at'],
      [{ job_id: 'J-vague-created-at', budget: '1.00', days_online: 3, created_at: 'yesterday' }, 'created_at'],
    ];
    const results = await distribute(service.url, [good, ...bad.map(([job]) => job)]);
    expect(dailyOf(results.get('J-good'))).toEqual(['3.34', '3.33', '3.33']);
    for (const [job, field] of bad) expect(errorOf(results.get(job.job_id)), job.job_id).toContain(field);
  });

  it('refuses a whole request it cannot answer with a 4xx and the reason', async () => {
    const job = (index: number) => ({ job_id: `J-${index}`, budget: '1.00', days_online: 1, created_at: MONDAY });
    const notJson = await post(service.url, '{"jobs": [');
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.text)).toEqual({ error: 'the request body is not JSON' });
    const tooMany = await post(service.url, { jobs: Array.from({ length: 501 }, (_, index) => job(index)) });
    expect(tooMany.status).toBe(413);
    expect(tooMany.text).toContain('at most 500');
    const twice = await post(service.url, { jobs: [job(1), job(1)] });
    expect(twice.status).toBe(400);
    expect(twice.text).toContain('appears twice');
    expect((await fetch(service.url)).status).toBe(405);
  });
});

describe('the weekday rule', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startService('weekday');
  });
  afterAll(async () => {
    expect(await service.stop()).toEqual({ code: 0, signal: null });
  });

  it('weighs Monday to Friday twice Saturday and Sunday, in UTC from created_at, to the cent', async () => {
    const results = await distribute(service.url, [
      // Monday 30 November 2026: five weekdays of weight 2 then a weekend of weight 1, 12 in all; 100.00 / 12 * 2
      // is 16.666..: the four cents left after the floors go to the largest remainders, the earliest first.
      { job_id: 'J-week', budget: '100.00', days_online: 7, created_at: MONDAY },
      // The last millisecond of Saturday 5 December in UTC: Saturday, Sunday, Monday weigh 1, 1, 2.
      { job_id: 'J-weekend', budget: '10.00', days_online: 3, created_at: '2026-12-05T23:59:59.999Z' },
      // The same instant written in UTC+02:00 is Sunday there, but the rule counts days in UTC.
      { job_id: 'J-offset', budget: '10.00', days_online: 3, created_at: '2026-12-06T01:59:59.999+02:00' },
      { job_id: 'J-one-cent', budget: '0.01', days_online: 7, created_at: MONDAY },
    ]);
    expect(dailyOf(results.get('J-week'))).toEqual(['16.67', '16.67', '16.67', '16.67', '16.66', '8.33', '8.33']);
    expect(dailyOf(results.get('J-weekend'))).toEqual(['2.50', '2.50', '5.00']);
    expect(dailyOf(results.get('J-offset'))).toEqual(['2.50', '2.50', '5.00']);
    // One cent goes to the day with the largest remainder: a weekday (2/12 of a cent) before the weekend (1/12).
    expect(dailyOf(results.get('J-one-cent'))).toEqual(['0.01', '0.00', '0.00', '0.00', '0.00', '0.00', '0.00']);
  });

  it('adds up exactly for a range of budgets, days and weekdays, and agrees with the exported rule', async () => {
    const budgets = ['0.00', '0.01', '0.07', '1.00', '99.99', '1234.56', '999999999999.99'];
    const days = [1, 2, 5, 6, 7, 8, 31, 365];
    // One start on each weekday, at various times of day.
    const starts = Array.from({ length: 7 }, (_, day) =>
      new Date(Date.parse(MONDAY) + day * 86_400_000 + day * 3_600_000 * 3).toISOString(),
    );
    const jobs = budgets.flatMap((budget) =>
      days.flatMap((daysOnline) =>
        starts.map((start) => ({ job_id: `J-${budget}-${daysOnline}-${start}`, budget, days_online: daysOnline, created_at: start })),
      ),
    );
    expect(jobs.length).toBeLessThanOrEqual(500);

    const results = await distribute(service.url, jobs);
    for (const job of jobs) {
      const daily = dailyOf(results.get(job.job_id));
      expect(daily, job.job_id).toHaveLength(job.days_online);
      expect(sumCents(daily), job.job_id).toBe(amountCents(job.budget));
      const expected = weekdaySplitCents(amountCents(job.budget), job.days_online, parseCreatedAtMs(job.created_at)).map(formatBigCents);
      expect(daily, job.job_id).toEqual(expected);
      // Every weekday gets at least as much as every weekend day of the same job.
      const weekdays = daily.filter((_, day) => !isWeekend(job.created_at, day)).map(amountCents);
      const weekend = daily.filter((_, day) => isWeekend(job.created_at, day)).map(amountCents);
      if (weekdays.length > 0 && weekend.length > 0) expect(min(weekdays) >= max(weekend), job.job_id).toBe(true);
    }
    // With a large budget the weight shows plainly: a weekday gets twice a weekend day, give or take a cent each.
    const week = dailyOf(results.get(`J-1234.56-7-${starts[0]}`)).map(amountCents);
    expect(week[0]! - 2n * week[6]!).toBeGreaterThanOrEqual(-2n);
    expect(week[0]! - 2n * week[6]!).toBeLessThanOrEqual(2n);
  });
});

function isWeekend(createdAt: string, day: number): boolean {
  const weekday = new Date(Date.parse(createdAt) + day * 86_400_000).getUTCDay();
  return weekday === 0 || weekday === 6;
}
const min = (values: bigint[]): bigint => values.reduce((a, b) => (b < a ? b : a));
const max = (values: bigint[]): bigint => values.reduce((a, b) => (b > a ? b : a));

describe('docs/distribution-protocol.schema.json', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startService('weekday');
  });
  afterAll(async () => {
    await service.stop();
  });

  it('validates a request budget-cdc would send and the response the example service gives', async () => {
    const request = {
      jobs: [
        { job_id: 'J-1', budget: '100.00', days_online: 3, created_at: MONDAY },
        { job_id: 'J-2', budget: '0.00', days_online: 3650, created_at: '1969-12-31T23:59:59.999Z' },
      ],
    };
    const validateRequest = schemaValidator('request');
    expect(validateRequest(request), JSON.stringify(validateRequest.errors)).toBe(true);

    const answer = await post(service.url, {
      jobs: [...request.jobs, { job_id: 'J-bad', budget: '1.001', days_online: 3, created_at: MONDAY }],
    });
    expect(answer.status).toBe(200);
    const response = JSON.parse(answer.text) as { results: JobResult[] };
    expect(response.results.filter((result) => 'error' in result)).toHaveLength(1);
    const validateResponse = schemaValidator('response');
    expect(validateResponse(response), JSON.stringify(validateResponse.errors)).toBe(true);
  });

  it('rejects what breaks the protocol: the schema can see mistakes', () => {
    const job = { job_id: 'J-1', budget: '100.00', days_online: 3, created_at: MONDAY };
    const validateRequest = schemaValidator('request');
    expect(validateRequest({ jobs: [{ ...job, budget: 100 }] })).toBe(false);
    expect(validateRequest({ jobs: [{ ...job, days_online: 0 }] })).toBe(false);
    expect(validateRequest({ jobs: Array.from({ length: 501 }, (_, index) => ({ ...job, job_id: `J-${index}` })) })).toBe(false);
    const validateResponse = schemaValidator('response');
    expect(validateResponse({ results: [{ job_id: 'J-1', daily: ['1.00'], error: 'both' }] })).toBe(false);
    expect(validateResponse({ results: [{ job_id: 'J-1', daily: ['-1.00'] }] })).toBe(false);
    expect(validateResponse({ results: [{ job_id: 'J-1', daily: ['1.5'] }] })).toBe(false);
    expect(validateResponse({ results: [{ job_id: 'J-1', daily: [1] }] })).toBe(false);
    expect(validateResponse({ jobs: [] })).toBe(false);
  });
});

describe('fault injection (test only)', () => {
  let service: Service;
  const jobs = [
    { job_id: 'J-good', budget: '10.00', days_online: 4, created_at: MONDAY },
    { job_id: 'J-bad', budget: '10.00', days_online: 4, created_at: MONDAY },
  ];
  const arm = async (fault: Record<string, unknown>) => {
    const answer = await post(`${service.url}/faults`, fault);
    expect(answer.status, answer.text).toBe(200);
  };
  const armed = async () => ((await (await fetch(`${service.url}/faults`)).json()) as { armed: unknown[] }).armed;

  beforeAll(async () => {
    service = await startService('even', { DISTRIBUTE_FAULTS: '1' });
  });
  beforeEach(async () => {
    expect((await fetch(`${service.url}/faults`, { method: 'DELETE' })).status).toBe(200);
  });
  afterAll(async () => {
    expect(await service.stop()).toEqual({ code: 0, signal: null });
  });

  it('is off without the switch', async () => {
    const plain = await startService('even');
    try {
      expect(await (await fetch(`${plain.url}/healthz`)).json()).toEqual({ rule: 'even', faults: false });
      expect((await post(`${plain.url}/faults`, { next: '500' })).status).toBe(404);
    } finally {
      await plain.stop();
    }
  });

  it('refuses a fault it does not know', async () => {
    const answer = await post(`${service.url}/faults`, { next: 'explode' });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('next must be one of');
  });

  it('500: the next `count` requests fail as a whole, then it answers again', async () => {
    await arm({ next: '500', count: 2 });
    expect((await post(service.url, { jobs })).status).toBe(500);
    expect((await post(service.url, { jobs })).status).toBe(500);
    expect(await armed()).toEqual([]);
    expect(dailyOf((await distribute(service.url, jobs)).get('J-good'))).toEqual(['2.50', '2.50', '2.50', '2.50']);
  });

  it('stall: no answer within a short client timeout, while other requests are answered', async () => {
    await arm({ next: 'stall' });
    const stalled = post(service.url, { jobs }, AbortSignal.timeout(CLIENT_TIMEOUT_MS));
    // Taken by the stalled request: the next one is not stalled, and is answered while the first still waits.
    await waitFor(async () => (await armed()).length === 0, { message: 'the stall fault to be taken' });
    expect(dailyOf((await distribute(service.url, jobs)).get('J-bad'))).toEqual(['2.50', '2.50', '2.50', '2.50']);
    await expect(stalled).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('drop: the connection is destroyed without an answer, and the client sees the error', async () => {
    await arm({ next: 'drop' });
    await expect(post(service.url, { jobs })).rejects.toThrow(TypeError);
    expect((await distribute(service.url, jobs)).size).toBe(2);
  });

  it('wrong-sum: the named job is off by a cent, the other job is right', async () => {
    await arm({ next: 'wrong-sum', job_id: 'J-bad' });
    const results = await distribute(service.url, jobs);
    expect(dailyOf(results.get('J-good'))).toEqual(['2.50', '2.50', '2.50', '2.50']);
    const bad = dailyOf(results.get('J-bad'));
    expect(bad).toHaveLength(4);
    expect(sumCents(bad)).toBe(1001n);
  });

  it('wrong-count: waits for a request carrying the named job, then leaves out its last day', async () => {
    await arm({ next: 'wrong-count', job_id: 'J-bad' });
    const without = await distribute(service.url, [jobs[0]!]);
    expect(dailyOf(without.get('J-good'))).toHaveLength(4);
    expect(await armed()).toHaveLength(1);

    const results = await distribute(service.url, jobs);
    expect(dailyOf(results.get('J-good'))).toHaveLength(4);
    expect(dailyOf(results.get('J-bad'))).toEqual(['2.50', '2.50', '2.50']);
    expect(await armed()).toEqual([]);
  });

  it('malformed: a 200 whose body is not JSON', async () => {
    await arm({ next: 'malformed' });
    const answer = await post(service.url, { jobs });
    expect(answer.status).toBe(200);
    expect(() => JSON.parse(answer.text) as unknown).toThrow(SyntaxError);
  });

  it(
    'SIGTERM answers a stalled request at once and exits 0',
    async () => {
      const stopping = await startService('even', { DISTRIBUTE_FAULTS: '1' });
      const answer = await post(`${stopping.url}/faults`, { next: 'stall' });
      expect(answer.status).toBe(200);
      const started = Date.now();
      const stalled = post(stopping.url, { jobs });
      await waitFor(async () => ((await (await fetch(`${stopping.url}/faults`)).json()) as { armed: unknown[] }).armed.length === 0, {
        message: 'the stall fault to be taken',
      });
      const exit = stopping.stop();
      const { status, text } = await stalled;
      expect(status).toBe(200);
      expect(JSON.parse(text)).toEqual({ results: jobs.map((job) => ({ job_id: job.job_id, daily: splitBudget(1000, 4) })) });
      expect(Date.now() - started).toBeLessThan(DEFAULT_STALL_MS);
      expect(await exit).toEqual({ code: 0, signal: null });
    },
    SIGTERM_TEST_TIMEOUT_MS,
  );
});
