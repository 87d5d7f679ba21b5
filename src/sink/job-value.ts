import { DAY_MS, type Job } from '../budget/job.js';
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
 * ISO text ("YYYY-MM-DDTHH:mm:ss.sssZ") of an instant, as Date#toISOString gives it, without a Date per
 * call: the date part is kept for the last day seen (rows of a load share a few days), the time part is
 * arithmetic. Years outside 0000-9999 never reach here (parseJob sets such rows aside).
 */
class IsoFormatter {
  private day = NaN;
  private datePart = '';

  format(ms: number): string {
    const day = Math.floor(ms / DAY_MS);
    if (day !== this.day) {
      this.day = day;
      this.datePart = new Date(day * DAY_MS).toISOString().slice(0, 11);
    }
    let rest = ms - day * DAY_MS;
    const millis = rest % 1000;
    rest = (rest - millis) / 1000;
    const seconds = rest % 60;
    rest = (rest - seconds) / 60;
    const minutes = rest % 60;
    const hours = (rest - minutes) / 60;
    return (
      this.datePart +
      (hours < 10 ? '0' : '') +
      hours +
      (minutes < 10 ? ':0' : ':') +
      minutes +
      (seconds < 10 ? ':0' : ':') +
      seconds +
      (millis < 10 ? '.00' : millis < 100 ? '.0' : '.') +
      millis +
      'Z'
    );
  }
}

const createdAtIso = new IsoFormatter();
const expiresAtIso = new IsoFormatter();
