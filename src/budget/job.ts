// The job as the budget rule sees it: figures in integer cents and milliseconds, nothing of PostgreSQL's text.

export const DAY_MS = 86_400_000;
/** The last instant the value's ISO timestamps ("YYYY-MM-DDTHH:mm:ss.sssZ", four-digit years) can hold. */
export const LAST_EXPIRY_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** The table's check on days_online. */
export const MAX_DAYS_ONLINE = 3650;

/** What the value of a job is computed from: amounts in cents, instants in milliseconds since 1970 (UTC). */
export interface JobFigures {
  budgetCents: number;
  daysOnline: number;
  createdAtMs: number;
  /** created_at truncated to the millisecond + days_online whole days: when the job goes offline. */
  expiresAtMs: number;
}

/** A job ready to be planned. */
export interface Job extends JobFigures {
  jobId: string;
}

/** When a job goes offline: created_at (to the millisecond) plus days_online whole days. */
export function expiryOf(createdAtMs: number, daysOnline: number): number {
  return createdAtMs + daysOnline * DAY_MS;
}
