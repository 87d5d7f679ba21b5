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
  // The last instant is remembered (rows of a bulk load often share created_at, a default now()), and
  // the date part of each day seen, in a map bounded by clearing it when full. A map of every instant
  // would keep millions of strings alive long enough to reach the old generation: garbage that the
  // collector frees late, which showed as 50 MB more peak memory.
  private lastMs = NaN;
  private lastText = '';
  private readonly dateParts = new Map<number, string>();

  format(ms: number): string {
    if (ms === this.lastMs) return this.lastText;
    const day = Math.floor(ms / DAY_MS);
    let datePart = this.dateParts.get(day);
    if (datePart === undefined) {
      if (this.dateParts.size >= FORMAT_CACHE_SIZE) this.dateParts.clear();
      datePart = new Date(day * DAY_MS).toISOString().slice(0, 11);
      this.dateParts.set(day, datePart);
    }
    // Milliseconds into the day fit in a small integer, so the arithmetic below stays in fast integers.
    const msOfDay = ms - day * DAY_MS;
    const millis = msOfDay % 1000;
    const secondsOfDay = (msOfDay - millis) / 1000;
    const seconds = secondsOfDay % 60;
    const minutesOfDay = (secondsOfDay - seconds) / 60;
    const minutes = minutesOfDay % 60;
    const hours = (minutesOfDay - minutes) / 60;
    this.lastMs = ms;
    this.lastText = datePart + TWO_DIGITS[hours] + ':' + TWO_DIGITS[minutes] + ':' + TWO_DIGITS[seconds] + '.' + THREE_DIGITS[millis] + 'Z';
    return this.lastText;
  }
}

const FORMAT_CACHE_SIZE = 4096;
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

const createdAtIso = new IsoFormatter();
const expiresAtIso = new IsoFormatter();
