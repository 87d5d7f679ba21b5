import { expiryOf, LAST_EXPIRY_MS, MAX_DAYS_ONLINE, type Job, type JobFigures } from '../budget/job.js';
import { RowError } from '../errors.js';
import type { JobColumnRanges, JobRow } from './job-changes.js';
import { parseCents, readCents } from './money-text.js';
import { parseTimestamptzMs, readTimestamptzMs } from './pg-timestamp.js';

// A replicated row's text (or its bytes, on the bulk-load path) into the budget rule's figures.

const DIGIT_0 = 0x30;

/** Parses a replicated row; throws RowError with the reason when the row cannot be processed. */
export function parseJob(row: JobRow): Job {
  const daysOnline = Number(row.daysOnline);
  if (!Number.isInteger(daysOnline) || daysOnline < 1 || daysOnline > MAX_DAYS_ONLINE) {
    throw new RowError(`days_online ${row.daysOnline} is not an integer between 1 and ${MAX_DAYS_ONLINE}`, row.jobId);
  }
  const budgetCents = parseCents(row.budget);
  if (budgetCents === undefined) {
    throw new RowError(`budget ${row.budget} is not an amount with two decimals (numeric(14,2))`, row.jobId);
  }
  let createdAtMs: number;
  try {
    createdAtMs = parseTimestamptzMs(row.createdAt);
  } catch (error) {
    throw new RowError((error as Error).message, row.jobId);
  }
  const expiresAtMs = expiryOf(createdAtMs, daysOnline);
  if (expiresAtMs > LAST_EXPIRY_MS) {
    throw new RowError(
      `created_at ${row.createdAt} + ${daysOnline} days is after the year 9999, which the value's timestamps cannot hold`,
      row.jobId,
    );
  }
  return { jobId: row.jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs };
}

/**
 * Reads the figures of a replicated row straight from the bytes of its message, where `ranges` locate its
 * columns, into `into`; no strings or objects per row, for the rows of bulk loads. Returns false when a
 * column is not in the form PostgreSQL prints, or the row is one parseJob sets aside: parseJob on the
 * row's text then gives the job or the reason.
 */
export function readJobFigures(bytes: Buffer, ranges: JobColumnRanges, into: JobFigures): boolean {
  const daysOnline = readDaysOnline(bytes, ranges.daysOnlineStart, ranges.daysOnlineEnd);
  if (Number.isNaN(daysOnline)) return false;
  const budgetCents = readCents(bytes, ranges.budgetStart, ranges.budgetEnd);
  if (Number.isNaN(budgetCents)) return false;
  const createdAtMs = readTimestamptzMs(bytes, ranges.createdAtStart, ranges.createdAtEnd);
  if (!Number.isFinite(createdAtMs)) return false;
  const expiresAtMs = expiryOf(createdAtMs, daysOnline);
  if (expiresAtMs > LAST_EXPIRY_MS) return false;
  into.budgetCents = budgetCents;
  into.daysOnline = daysOnline;
  into.createdAtMs = createdAtMs;
  into.expiresAtMs = expiresAtMs;
  return true;
}

/** days_online as int4out prints it (no sign, no leading zero) and within 1-3650; NaN otherwise. */
function readDaysOnline(bytes: Buffer, start: number, end: number): number {
  const length = end - start;
  if (length < 1 || length > 4 || bytes[start] === DIGIT_0) return Number.NaN;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i]! - DIGIT_0;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return value <= MAX_DAYS_ONLINE ? value : Number.NaN;
}
