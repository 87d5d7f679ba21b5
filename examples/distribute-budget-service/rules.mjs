// The two distribution rules of the example service, as pure functions: no I/O, no clock, no Node API.
// Money is an exact integer of cents held in a BigInt, read from and written as decimal text, so that no
// floating-point fraction ever touches an amount and any budget a JSON string can carry is split exactly.

/** The most days a job can be online: budget-cdc's table checks days_online between 1 and 3650. */
export const MAX_DAYS_ONLINE = 3650;
/** Digits before the decimal point a budget may have: far above numeric(14,2), low enough to refuse abuse cheaply. */
export const MAX_BUDGET_INTEGER_DIGITS = 30;
/** The weight of a day by its UTC weekday, Sunday (0) to Saturday (6), for the weekday rule. */
export const WEEKDAY_WEIGHTS = Object.freeze([1, 2, 2, 2, 2, 2, 1]);
/** The rules this service knows, by the name given to --rule. */
export const RULE_NAMES = Object.freeze(['even', 'weekday']);

const DAY_MS = 86_400_000;
// 1970-01-01 was a Thursday: day 0 since the epoch has weekday 4.
const EPOCH_WEEKDAY = 4;
const BUDGET_PATTERN = new RegExp(`^(\\d{1,${MAX_BUDGET_INTEGER_DIGITS}})(?:\\.(\\d{1,2}))?$`);
// ISO 8601 as Date#toISOString writes it (six-digit signed years included), or with an explicit offset.
const INSTANT_PATTERN = /^(?:\d{4}|[+-]\d{6})-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** An input a rule cannot read: the message is the reason the service sends back for the job. */
export class JobInputError extends Error {
  constructor(message) {
    super(message);
    this.name = 'JobInputError';
  }
}

/** Reads a budget such as "100.00", "7.5" or "12" as whole cents; throws JobInputError for anything else. */
export function parseBudgetCents(budget) {
  if (typeof budget !== 'string') {
    throw new JobInputError(`budget must be a decimal string such as "100.00", got ${describe(budget)}`);
  }
  const match = BUDGET_PATTERN.exec(budget);
  if (match === null) {
    throw new JobInputError(
      `budget must be a non-negative decimal with at most two decimals (whole cents) and at most ${MAX_BUDGET_INTEGER_DIGITS} digits before the point, got ${JSON.stringify(budget)}`,
    );
  }
  const [, units, fraction = ''] = match;
  return BigInt(units) * 100n + BigInt(fraction.padEnd(2, '0'));
}

/** Reads days_online: an integer from 1 to MAX_DAYS_ONLINE; throws JobInputError for anything else. */
export function parseDaysOnline(daysOnline) {
  if (!Number.isInteger(daysOnline) || daysOnline < 1 || daysOnline > MAX_DAYS_ONLINE) {
    throw new JobInputError(`days_online must be an integer from 1 to ${MAX_DAYS_ONLINE}, got ${describe(daysOnline)}`);
  }
  return daysOnline;
}

/** Reads created_at, an ISO 8601 instant ("2026-11-30T10:00:00.000Z"), as milliseconds since 1970 (UTC). */
export function parseCreatedAtMs(createdAt) {
  const ms = typeof createdAt === 'string' && INSTANT_PATTERN.test(createdAt) ? Date.parse(createdAt) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new JobInputError(`created_at must be an ISO 8601 instant such as "2026-11-30T10:00:00.000Z", got ${describe(createdAt)}`);
  }
  return ms;
}

/** Writes whole cents (a BigInt >= 0) as "units.cc": 12345n -> "123.45", 5n -> "0.05". */
export function formatCents(cents) {
  const remainder = cents % 100n;
  return `${cents / 100n}.${remainder < 10n ? '0' : ''}${remainder}`;
}

/**
 * The even rule, budget-cdc's built-in split (src/budget/split-budget.ts): every day gets floor(cents / days)
 * and the first `cents % days` days one cent more. Returns the daily amounts in cents (BigInt), day 0 first.
 */
export function evenSplitCents(cents, days) {
  const base = cents / BigInt(days);
  // Below days (at most MAX_DAYS_ONLINE): a Number, so the loop compares no BigInts.
  const daysWithExtraCent = Number(cents % BigInt(days));
  const amounts = new Array(days);
  for (let day = 0; day < days; day++) amounts[day] = day < daysWithExtraCent ? base + 1n : base;
  return amounts;
}

/** The UTC weekday (0 = Sunday) of each day online, day 0 being the UTC date of `createdAtMs`. */
export function weekdaysOnline(createdAtMs, days) {
  const firstDay = Math.floor(createdAtMs / DAY_MS);
  // ((n % 7) + 7) % 7: dates before 1970 have a negative day number.
  return Array.from({ length: days }, (_, day) => (((firstDay + day + EPOCH_WEEKDAY) % 7) + 7) % 7);
}

/**
 * The weekday rule: each day online weighs WEEKDAY_WEIGHTS[its UTC weekday] (Monday-Friday 2, Saturday-Sunday 1)
 * and gets its share of the budget. Shares are cut to whole cents by the largest remainder method: every day
 * gets floor(cents * weight / total weight), and the cents left over go one each to the days with the largest
 * remainders, the earliest first on a tie, so the amounts add up to the budget exactly. In cents (BigInt).
 */
export function weekdaySplitCents(cents, days, createdAtMs) {
  const weights = weekdaysOnline(createdAtMs, days).map((weekday) => BigInt(WEEKDAY_WEIGHTS[weekday]));
  const totalWeight = weights.reduce((sum, weight) => sum + weight, 0n);
  const amounts = weights.map((weight) => (cents * weight) / totalWeight);
  const remainders = weights.map((weight) => (cents * weight) % totalWeight);
  let leftover = cents - amounts.reduce((sum, amount) => sum + amount, 0n);
  const byRemainder = amounts
    .map((_, day) => day)
    .sort((a, b) => (remainders[a] === remainders[b] ? a - b : remainders[a] > remainders[b] ? -1 : 1));
  // leftover < days: the floors lose less than one cent per day.
  for (const day of byRemainder) {
    if (leftover === 0n) break;
    amounts[day] += 1n;
    leftover -= 1n;
  }
  return amounts;
}

/**
 * One job of a request to its result entry under `rule` ("even" or "weekday"): `{job_id, daily}` with the amounts
 * as "units.cc" strings, or `{job_id, error}` when the job's budget, days_online or created_at cannot be read.
 */
export function distributeJob(job, rule) {
  try {
    const cents = parseBudgetCents(job.budget);
    const days = parseDaysOnline(job.days_online);
    const createdAtMs = parseCreatedAtMs(job.created_at);
    const amounts = rule === 'weekday' ? weekdaySplitCents(cents, days, createdAtMs) : evenSplitCents(cents, days);
    return { job_id: job.job_id, daily: formatAmounts(amounts) };
  } catch (error) {
    if (error instanceof JobInputError) return { job_id: job.job_id, error: error.message };
    throw error;
  }
}

/** Each amount as "units.cc"; a run of equal amounts (most days of a rule) shares one formatted string. */
function formatAmounts(amounts) {
  const texts = new Array(amounts.length);
  let previous = -1n;
  let text = '';
  for (let day = 0; day < amounts.length; day++) {
    if (amounts[day] !== previous) {
      previous = amounts[day];
      text = formatCents(previous);
    }
    texts[day] = text;
  }
  return texts;
}

function describe(value) {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
