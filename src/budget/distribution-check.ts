import { MAX_DAYS_ONLINE, type Job } from './job.js';
import { formatCents } from './money.js';

// The answer of a distribution service (issue 14) is not trusted: a job's daily amounts are checked here
// before anything of them reaches Redis, and a job that fails gets a reason that names what is wrong, for
// its dead letter. Amounts are strings "units.cc" as the protocol says; a JSON number is refused, because
// a number such as 33.33 has already gone through binary floating point and its cents are not exact.
// The amounts are returned in cents, as the built-in split computes them (split-budget.ts), so that the
// value writer can print them the same canonical way ("050.00" from a service is stored as "50.00").

/** What is sent to the service about a job: budget in cents (numeric(14,2), so a safe integer) and days. */
export type DistributedJob = Pick<Job, 'jobId' | 'budgetCents' | 'daysOnline'>;

/** A job's checked amounts in cents, day 0 first; or why the answer for it cannot be used. */
export type DistributionCheck = { ok: true; dailyCents: number[] } | { ok: false; reason: string };

/** A response matched to its batch: one check per job, in the jobs' order; or why the whole batch failed. */
export type BatchCheck =
  | {
      ok: true;
      perJob: DistributionCheck[];
      /** Results that belong to no job of the batch (unknown or missing job_id), described for the log. */
      strays: string[];
    }
  | { ok: false; reason: string };

export const NO_ANSWER = 'no answer for this job';
export const NOT_AN_ANSWER = 'the answer is not an object with daily or error';
export const NOT_A_RESULTS_RESPONSE = 'the response is not an object with a results array';

const AMOUNT_TEXT = /^(\d+)\.(\d{2})$/;
const NEGATIVE_AMOUNT_TEXT = /^-\d+\.\d{2}$/;
/** Units of up to 13 digits keep cents below 10^15, exact in a double; a longer one (or leading zeros) takes the BigInt path. */
const MAX_NUMBER_UNITS_DIGITS = 13;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
/** How much of a bad value a reason quotes: a reason lands in a dead letter, not a megabyte of it. */
const MAX_QUOTED_CHARS = 40;

/**
 * Checks the service's answer for `job`: exactly daysOnline amounts, each a string "units.cc" (not a JSON
 * number), none negative, adding up to the budget to the cent, and the answer's job_id is the job's.
 */
export function checkDistribution(job: DistributedJob, answer: unknown): DistributionCheck {
  assertJob(job);
  if (answer === undefined) return refuse(NO_ANSWER);
  if (!isRecord(answer)) return refuse(NOT_AN_ANSWER);
  const hasDaily = 'daily' in answer;
  const hasError = 'error' in answer;
  if (!hasDaily && !hasError) return refuse(NOT_AN_ANSWER);
  if (typeof answer.job_id !== 'string') return refuse(`the answer has no job_id string (got ${quote(answer.job_id)})`);
  if (answer.job_id !== job.jobId) return refuse(`the answer is for job_id ${quote(answer.job_id)}, not ${quote(job.jobId)}`);
  if (hasDaily && hasError) return refuse('the answer has both daily and error: the service must send one of them');
  if (hasError) {
    const error = answer.error;
    if (typeof error === 'string')
      return refuse(error === '' ? 'the service refused the job without a reason' : `the service refused the job: ${error}`);
    return refuse(`the service refused the job: ${quote(error)}`);
  }
  return checkDaily(job, answer.daily);
}

/**
 * Matches a response body to the jobs of its batch by job_id (results in any order). A body that is not
 * {results: [...]} fails the whole batch, which the caller retries. Per job: its checked answer, or
 * NO_ANSWER, or a reason naming the duplicates. The jobs of one batch must have distinct job_ids, or the
 * answers could not be told apart.
 */
export function matchAnswers(jobs: readonly DistributedJob[], response: unknown): BatchCheck {
  const indexOfJob = new Map<string, number>();
  jobs.forEach((job, index) => {
    if (indexOfJob.has(job.jobId)) {
      throw new RangeError(`job_id ${quote(job.jobId)} is twice in the batch: send one entry per job_id (its latest row) per request`);
    }
    indexOfJob.set(job.jobId, index);
  });
  if (!isRecord(response) || !Array.isArray(response.results)) return refuse(NOT_A_RESULTS_RESPONSE);

  // Per job its first answer and how many came: no array per job.
  const answers: unknown[] = new Array<unknown>(jobs.length);
  const answerCounts = new Uint32Array(jobs.length);
  const strays: string[] = [];
  response.results.forEach((result: unknown, position) => {
    const jobId = isRecord(result) ? result.job_id : undefined;
    const index = typeof jobId === 'string' ? indexOfJob.get(jobId) : undefined;
    if (index === undefined) {
      strays.push(
        typeof jobId === 'string'
          ? `result ${position + 1} is for job_id ${quote(jobId)}, which is not in the batch`
          : `result ${position + 1} has no job_id string: ${quote(result)}`,
      );
      return;
    }
    const count = answerCounts[index]!;
    if (count === 0) answers[index] = result;
    answerCounts[index] = count + 1;
  });

  const perJob = jobs.map((job, index): DistributionCheck => {
    const count = answerCounts[index]!;
    // Two answers for one job, even equal ones, mean the service is confused about the batch: use neither.
    if (count > 1) return refuse(`the service answered ${count} times for this job; one answer is expected`);
    return checkDistribution(job, answers[index]);
  });
  return { ok: true, perJob, strays };
}

function checkDaily(job: DistributedJob, daily: unknown): DistributionCheck {
  if (!Array.isArray(daily)) return refuse(`daily is not an array of amounts (got ${quote(daily)})`);
  if (daily.length !== job.daysOnline) {
    return refuse(`distribution service answered ${plural(daily.length, 'amount')} for ${job.daysOnline} days online`);
  }
  const dailyCents: number[] = new Array<number>(daily.length);
  let sum = 0;
  let inexact = false;
  for (let day = 0; day < daily.length; day++) {
    const amount: unknown = daily[day];
    // Millions of amounts per second: the usual one is read without a regex or a string of its own.
    const fast = typeof amount === 'string' ? plainAmountCents(amount) : -1;
    if (fast >= 0) {
      dailyCents[day] = fast;
      sum += fast;
      continue;
    }
    const name = `amount ${day + 1} (${quote(amount)})`;
    if (typeof amount === 'number') return refuse(`${name} is a JSON number: the protocol sends amounts as strings such as "50.00"`);
    if (typeof amount !== 'string') return refuse(`${name} is not a string such as "50.00"`);
    const match = AMOUNT_TEXT.exec(amount);
    if (match === null) {
      return refuse(
        NEGATIVE_AMOUNT_TEXT.test(amount) && /[1-9]/.test(amount) ? `${name} is negative` : `${name} is not a decimal with two places`,
      );
    }
    const units = match[1]!;
    if (units.length > MAX_NUMBER_UNITS_DIGITS) {
      inexact = true;
      continue;
    }
    const cents = Number(units) * 100 + Number(match[2]);
    dailyCents[day] = cents;
    sum += cents;
  }
  if (!inexact && Number.isSafeInteger(sum)) {
    if (sum === job.budgetCents) return { ok: true, dailyCents };
    return refuse(`the amounts add up to ${formatCents(sum)}, not the budget ${formatCents(job.budgetCents)}`);
  }
  return checkSumExactly(job, daily as string[]);
}

/**
 * The cents of `amount` when it matches AMOUNT_TEXT with at most MAX_NUMBER_UNITS_DIGITS units digits (exact in a
 * double), read digit by digit; -1 for anything else, which the regex path then reads or refuses with its reason.
 */
function plainAmountCents(amount: string): number {
  const point = amount.length - 3;
  if (point < 1 || point > MAX_NUMBER_UNITS_DIGITS || amount.charCodeAt(point) !== DOT) return -1;
  let cents = 0;
  for (let i = 0; i < amount.length; i++) {
    if (i === point) continue;
    const digit = amount.charCodeAt(i) - DIGIT_0;
    if (digit < 0 || digit > 9) return -1;
    cents = cents * 10 + digit;
  }
  return cents;
}

/** The sum in BigInt, for amounts too long for a double (or a sum past 2^53): rare, so its cost does not matter. */
function checkSumExactly(job: DistributedJob, daily: readonly string[]): DistributionCheck {
  const cents = daily.map((amount) => BigInt(amount.replace('.', '')));
  const sum = cents.reduce((total, amount) => total + amount, 0n);
  if (sum !== BigInt(job.budgetCents)) {
    return refuse(`the amounts add up to ${formatBigCents(sum)}, not the budget ${formatCents(job.budgetCents)}`);
  }
  // Each amount is at most the budget, a safe integer, so Number is exact here.
  return { ok: true, dailyCents: cents.map(Number) };
}

function assertJob(job: DistributedJob): void {
  if (!Number.isSafeInteger(job.budgetCents) || job.budgetCents < 0) {
    throw new RangeError(`budgetCents must be a non-negative whole number of cents, got ${job.budgetCents}`);
  }
  if (!Number.isInteger(job.daysOnline) || job.daysOnline < 1 || job.daysOnline > MAX_DAYS_ONLINE) {
    throw new RangeError(`daysOnline must be an integer between 1 and ${MAX_DAYS_ONLINE}, got ${job.daysOnline}`);
  }
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value` as JSON, cut to MAX_QUOTED_CHARS. */
function quote(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length <= MAX_QUOTED_CHARS ? json : `${json.slice(0, MAX_QUOTED_CHARS - 1)}…`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function formatBigCents(cents: bigint): string {
  return `${cents / 100n}.${(cents % 100n).toString().padStart(2, '0')}`;
}
