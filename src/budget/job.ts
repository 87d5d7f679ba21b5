import { RowError } from '../errors.js';
import type { JobRow } from '../replication/job-changes.js';
import { parseTimestamptzMs } from '../replication/pg-timestamp.js';
import { parseCents } from './money.js';

export const DAY_MS = 86_400_000;
/** The last instant the value's ISO timestamps ("YYYY-MM-DDTHH:mm:ss.sssZ", four-digit years) can hold. */
export const LAST_EXPIRY_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const MAX_DAYS_ONLINE = 3650;

/** A job ready to be planned: amounts in cents, instants in milliseconds since 1970 (UTC). */
export interface Job {
  jobId: string;
  budgetCents: number;
  daysOnline: number;
  createdAtMs: number;
  /** created_at truncated to the millisecond + days_online whole days: when the job goes offline. */
  expiresAtMs: number;
}

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
  const expiresAtMs = createdAtMs + daysOnline * DAY_MS;
  if (expiresAtMs > LAST_EXPIRY_MS) {
    throw new RowError(
      `created_at ${row.createdAt} + ${daysOnline} days is after the year 9999, which the value's timestamps cannot hold`,
      row.jobId,
    );
  }
  return { jobId: row.jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs };
}
