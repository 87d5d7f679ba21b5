import { civilFromDays } from '../budget/civil-days.js';
import { DAY_MS, type Job, type JobFigures } from '../budget/job.js';
import { formatCents } from '../budget/money.js';
import { baseDailyCents, daysWithExtraCent } from '../budget/split-budget.js';
import { asciiConstant, decimalDigits, writeBytes, writeConstant, writeDecimal, writePadded, writeTwoDigits } from './ascii-bytes.js';

// The JSON value stored at a job's key, fields in the contract's order:
// {"job_id","budget","days_online","created_at","expires_at","daily":[…]}.
// It is written byte by byte into the batch buffer (see WriteBatch#setJob): a value built as a string
// would leave string pieces and their garbage behind for every row.

const JOB_ID_OPEN = asciiConstant('{"job_id":"');
const BUDGET_OPEN = asciiConstant('","budget":"');
const DAYS_OPEN = asciiConstant('","days_online":');
const CREATED_AT_OPEN = asciiConstant(',"created_at":"');
const EXPIRES_AT_OPEN = asciiConstant('","expires_at":"');
const DAILY_OPEN = asciiConstant('","daily":[');
const CLOSE = asciiConstant(']}');
/** "YYYY-MM-DDTHH:mm:ss.sssZ", as Date#toISOString gives it for years 0000-9999. */
const ISO_LENGTH = 24;
const FIXED_LENGTH =
  JOB_ID_OPEN.length +
  BUDGET_OPEN.length +
  DAYS_OPEN.length +
  CREATED_AT_OPEN.length +
  ISO_LENGTH +
  EXPIRES_AT_OPEN.length +
  ISO_LENGTH +
  DAILY_OPEN.length +
  CLOSE.length;
const QUOTE = 0x22;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const BACKSLASH = 0x5c;

/** The JSON value of `job`, as a string (inspect, tests); the stream writes it with writeJobValue. */
export function jobValue(job: Job): string {
  const jobIdJson = jsonStringBody(job.jobId);
  const target = Buffer.allocUnsafe(jobValueLength(job, jobIdJson.length));
  const end = writeJobValue(target, 0, job, jobIdJson, 0, jobIdJson.length);
  return target.toString('utf8', 0, end);
}

/**
 * The value of `job` with daily amounts that a distribution service gave (cents, day 0 first, checked by
 * budget/distribution-check.ts): the same JSON as jobValue, built as a string. Services' answers take the
 * general path; only the built-in split is written byte by byte.
 */
export function jobValueWithDaily(job: Job, dailyCents: readonly number[]): string {
  // Rules give runs of equal amounts (the even split two, a weekday rule a few): each run is formatted once and
  // repeated, a flat string rather than one piece per day.
  let daily = '';
  for (let day = 0; day < dailyCents.length;) {
    const cents = dailyCents[day]!;
    let end = day + 1;
    while (end < dailyCents.length && dailyCents[end] === cents) end++;
    daily += `"${formatCents(cents)}",`.repeat(end - day);
    day = end;
  }
  return (
    `{"job_id":${JSON.stringify(job.jobId)},"budget":"${formatCents(job.budgetCents)}","days_online":${job.daysOnline},` +
    `"created_at":"${new Date(job.createdAtMs).toISOString()}","expires_at":"${new Date(job.expiresAtMs).toISOString()}",` +
    `"daily":[${daily.slice(0, -1)}]}`
  );
}

/** The UTF-8 bytes of `text` escaped as the inside of a JSON string, as JSON.stringify escapes it. */
export function jsonStringBody(text: string): Buffer {
  return Buffer.from(JSON.stringify(text).slice(1, -1));
}

/** The longest job_id written from its message bytes; a longer one (TOASTed, megabytes) takes the general path. */
export const MAX_PLAIN_JOB_ID_BYTES = 1024;

/**
 * Whether `bytes[start, end)` is a job_id that JSON carries as it is: printable ASCII without `"` or `\`,
 * and short. Then the same bytes serve the key and the value's job_id.
 */
export function isPlainJobId(bytes: Buffer, start: number, end: number): boolean {
  if (end - start > MAX_PLAIN_JOB_ID_BYTES) return false;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte < 0x20 || byte > 0x7e || byte === QUOTE || byte === BACKSLASH) return false;
  }
  return true;
}

/** Bytes of the value of `job` when its job_id, escaped for JSON, is `jobIdJsonLength` bytes. */
export function jobValueLength(job: JobFigures, jobIdJsonLength: number): number {
  const { budgetCents, daysOnline } = job;
  const higherDays = daysWithExtraCent(budgetCents, daysOnline);
  const base = baseDailyCents(budgetCents, daysOnline);
  // Each amount is written "units.cc" between quotes, and all but the last are followed by a comma.
  const daily = higherDays * (centsLength(base + 1) + 3) + (daysOnline - higherDays) * (centsLength(base) + 3) - 1;
  return FIXED_LENGTH + jobIdJsonLength + centsLength(budgetCents) + decimalDigits(daysOnline) + daily;
}

/**
 * Writes the value of `job` at `at`; its job_id comes escaped for JSON, as `source[start, end)`. Returns
 * the position after it, which is `at + jobValueLength(job, end - start)`. The instants must lie in years
 * 0000-9999 (parseJob sets later ones aside; earlier ones are long expired and get no value).
 */
export function writeJobValue(target: Buffer, at: number, job: JobFigures, source: Buffer, start: number, end: number): number {
  const { budgetCents, daysOnline } = job;
  at = writeValueHead(target, at, job, source, start, end);
  // The split (see splitBudget): the first days get one cent more than the others. Each distinct amount
  // is formatted once, then its bytes are repeated.
  const higherDays = daysWithExtraCent(budgetCents, daysOnline);
  const base = baseDailyCents(budgetCents, daysOnline);
  at = writeRepeatedAmount(target, at, base + 1, higherDays);
  at = writeRepeatedAmount(target, at, base, daysOnline - higherDays);
  target[at - 1] = CLOSE_BRACKET; // over the last comma
  target[at++] = CLOSE_BRACE;
  return at;
}

/**
 * Writes the value of `job` with the daily amounts a distribution service gave (cents, day 0 first, as many as
 * its days): the same bytes as jobValueWithDaily, straight into the batch buffer like writeJobValue. Returns
 * the position after it, `at + jobValueWithDailyLength(job, end - start, dailyCents)`.
 */
export function writeJobValueWithDaily(
  target: Buffer,
  at: number,
  job: JobFigures,
  source: Buffer,
  start: number,
  end: number,
  dailyCents: readonly number[],
): number {
  at = writeValueHead(target, at, job, source, start, end);
  // Rules give runs of equal amounts (the even split two, a weekday rule a few): each run is formatted once.
  for (let day = 0; day < dailyCents.length;) {
    const cents = dailyCents[day]!;
    let runEnd = day + 1;
    while (runEnd < dailyCents.length && dailyCents[runEnd] === cents) runEnd++;
    at = writeRepeatedAmount(target, at, cents, runEnd - day);
    day = runEnd;
  }
  target[at - 1] = CLOSE_BRACKET; // over the last comma
  target[at++] = CLOSE_BRACE;
  return at;
}

/** Bytes of the value of `job` with `dailyCents`, its job_id `jobIdJsonLength` bytes escaped for JSON. */
export function jobValueWithDailyLength(job: JobFigures, jobIdJsonLength: number, dailyCents: readonly number[]): number {
  let daily = -1; // no comma after the last amount
  for (let day = 0; day < dailyCents.length; day++) daily += centsLength(dailyCents[day]!) + 3;
  return FIXED_LENGTH + jobIdJsonLength + centsLength(job.budgetCents) + decimalDigits(job.daysOnline) + daily;
}

/** Everything of a value before its daily amounts: `{"job_id":…,"daily":[`. */
function writeValueHead(target: Buffer, at: number, job: JobFigures, source: Buffer, start: number, end: number): number {
  at = writeConstant(target, at, JOB_ID_OPEN);
  at = writeBytes(target, at, source, start, end);
  at = writeConstant(target, at, BUDGET_OPEN);
  at = writeCents(target, at, job.budgetCents);
  at = writeConstant(target, at, DAYS_OPEN);
  at = writeDecimal(target, at, job.daysOnline);
  at = writeConstant(target, at, CREATED_AT_OPEN);
  at = writeIso(target, at, job.createdAtMs);
  at = writeConstant(target, at, EXPIRES_AT_OPEN);
  at = writeIso(target, at, job.expiresAtMs);
  return writeConstant(target, at, DAILY_OPEN);
}

/** Whether `jobId` is a plain job_id (see isPlainJobId), read from the string: no buffer per job. */
export function isPlainJobIdText(jobId: string): boolean {
  if (jobId.length > MAX_PLAIN_JOB_ID_BYTES) return false;
  for (let i = 0; i < jobId.length; i++) {
    const code = jobId.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === QUOTE || code === BACKSLASH) return false;
  }
  return true;
}

/** Writes `"units.cc",` `count` times. */
function writeRepeatedAmount(target: Buffer, at: number, cents: number, count: number): number {
  if (count === 0) return at;
  const first = at;
  target[at++] = QUOTE;
  at = writeCents(target, at, cents);
  target[at++] = QUOTE;
  target[at++] = COMMA;
  const length = at - first;
  const end = first + length * count;
  // Doubling: each copy repeats everything written so far.
  while (at < end) {
    const copied = Math.min(at - first, end - at);
    target.copyWithin(at, first, first + copied);
    at += copied;
  }
  return at;
}

/** Bytes of `cents` written as "units.cc". */
function centsLength(cents: number): number {
  return decimalDigits(Math.floor(cents / 100)) + 3;
}

/** Writes cents as "units.cc" (12345 -> "123.45", 5 -> "0.05"), as formatCents does. */
function writeCents(target: Buffer, at: number, cents: number): number {
  const remainder = cents % 100;
  at = writeDecimal(target, at, (cents - remainder) / 100);
  target[at++] = 0x2e; // .
  return writeTwoDigits(target, at, remainder);
}

/**
 * Calendar dates of the days instants were written for, in a small direct-mapped cache: rows of a load
 * share a few created_at days, and their expires_at days cycle through their days_online, so the same
 * few dates come back row after row. No object per entry: typed arrays indexed by day.
 */
class DayCache {
  private static readonly SLOTS = 64; // a power of two: the slot is the day's low bits
  private readonly days = new Float64Array(DayCache.SLOTS).fill(Number.NaN);
  private readonly years = new Int32Array(DayCache.SLOTS);
  private readonly months = new Uint8Array(DayCache.SLOTS);
  private readonly daysOfMonth = new Uint8Array(DayCache.SLOTS);
  private readonly scratch: [number, number, number] = [0, 0, 0];

  /** The slot holding the date of `days`, computed if it held another day. */
  slotOf(days: number): number {
    const slot = days & (DayCache.SLOTS - 1);
    if (this.days[slot] !== days) {
      civilFromDays(days, this.scratch);
      this.days[slot] = days;
      this.years[slot] = this.scratch[0];
      this.months[slot] = this.scratch[1];
      this.daysOfMonth[slot] = this.scratch[2];
    }
    return slot;
  }

  year(slot: number): number {
    return this.years[slot]!;
  }

  month(slot: number): number {
    return this.months[slot]!;
  }

  dayOfMonth(slot: number): number {
    return this.daysOfMonth[slot]!;
  }
}

const dayCache = new DayCache();

/** Writes the instant `ms` as "YYYY-MM-DDTHH:mm:ss.sssZ", as Date#toISOString does for years 0000-9999. */
function writeIso(target: Buffer, at: number, ms: number): number {
  const days = Math.floor(ms / DAY_MS);
  const slot = dayCache.slotOf(days);
  let rest = ms - days * DAY_MS;
  const millis = rest % 1000;
  rest = (rest - millis) / 1000;
  const seconds = rest % 60;
  rest = (rest - seconds) / 60;
  const minutes = rest % 60;
  const hours = (rest - minutes) / 60;
  at = writePadded(target, at, dayCache.year(slot), 4);
  target[at++] = 0x2d; // -
  at = writeTwoDigits(target, at, dayCache.month(slot));
  target[at++] = 0x2d;
  at = writeTwoDigits(target, at, dayCache.dayOfMonth(slot));
  target[at++] = 0x54; // T
  at = writeTwoDigits(target, at, hours);
  target[at++] = 0x3a; // :
  at = writeTwoDigits(target, at, minutes);
  target[at++] = 0x3a;
  at = writeTwoDigits(target, at, seconds);
  target[at++] = 0x2e; // .
  at = writePadded(target, at, millis, 3);
  target[at++] = 0x5a; // Z
  return at;
}
