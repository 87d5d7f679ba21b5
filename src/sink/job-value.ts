import type { Job } from '../budget/job.js';
import { formatCents } from '../budget/money.js';
import { dailyAmounts } from '../budget/split-budget.js';

/**
 * The JSON string stored at a job's key, with the fields in the contract's order:
 * {"job_id","budget","days_online","created_at","expires_at","daily":[…]}.
 * Built by concatenation: it is on the hot path, and only job_id needs escaping.
 */
export function jobValue(job: Job): string {
  const { base, higher, higherDays } = dailyAmounts(job.budgetCents, job.daysOnline);
  // The daily array holds at most two distinct amounts: built with repeat(), not element by element.
  const daily = ('"' + higher + '",').repeat(higherDays) + ('"' + base + '",').repeat(job.daysOnline - higherDays);
  return (
    '{"job_id":' +
    JSON.stringify(job.jobId) +
    ',"budget":"' +
    formatCents(job.budgetCents) +
    '","days_online":' +
    job.daysOnline +
    ',"created_at":"' +
    createdAtIso.format(job.createdAtMs) +
    '","expires_at":"' +
    expiresAtIso.format(job.expiresAtMs) +
    '","daily":[' +
    daily.slice(0, -1) +
    ']}'
  );
}

/**
 * ISO text of an instant, remembering the last one: rows of one bulk load usually share created_at (a
 * default now()), and so their expiry when they share days_online too.
 */
class IsoFormatter {
  private lastMs = NaN;
  private lastText = '';

  format(ms: number): string {
    if (ms !== this.lastMs) {
      this.lastText = new Date(ms).toISOString();
      this.lastMs = ms;
    }
    return this.lastText;
  }
}

const createdAtIso = new IsoFormatter();
const expiresAtIso = new IsoFormatter();
