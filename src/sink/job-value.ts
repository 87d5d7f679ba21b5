import type { Job } from '../budget/job.js';
import { formatCents } from '../budget/money.js';
import { splitBudget } from '../budget/split-budget.js';

/**
 * The JSON string stored at a job's key, with the fields in the contract's order:
 * {"job_id","budget","days_online","created_at","expires_at","daily":[…]}.
 * Built by concatenation: it is on the hot path, and only job_id needs escaping.
 */
export function jobValue(job: Job): string {
  const daily = splitBudget(job.budgetCents, job.daysOnline);
  return (
    '{"job_id":' +
    JSON.stringify(job.jobId) +
    ',"budget":"' +
    formatCents(job.budgetCents) +
    '","days_online":' +
    job.daysOnline +
    ',"created_at":"' +
    new Date(job.createdAtMs).toISOString() +
    '","expires_at":"' +
    new Date(job.expiresAtMs).toISOString() +
    '","daily":["' +
    daily.join('","') +
    '"]}'
  );
}
