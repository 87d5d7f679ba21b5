import type { DistributionCheck } from './distribution-check.js';
import type { Job } from './job.js';
import { baseDailyCents, daysWithExtraCent } from './split-budget.js';

// The budget rule as a choice (issue 14): the built-in even split, or a team's distribution service. Both
// answer the same question, each job's amount per day in cents; they differ in how. The even split is
// computed while a job's value is encoded, straight into the batch's bytes (sink/job-value.ts): no call,
// no array per job, the bulk-load path. A service is asked over the network, batched, and its answers are
// checked (distribution-check.ts) before a batch's writes are encoded in WAL order.

export interface BudgetStrategy {
  /** What the checkpoint records and `status` shows: `even`, or the service's URL without its password. */
  readonly name: string;
  /** The built-in even split: the value writer computes it itself, so distribute() is never awaited on the stream. */
  readonly builtIn: boolean;
  /**
   * Each job's daily amounts in cents, or why the job cannot be used (its dead letter's reason), in the
   * order of `jobs`. Resolves only once every job has an answer: a service that fails as a whole is asked
   * again for as long as it takes. Rejects with `signal`'s reason once it aborts (a stop, a lost session).
   */
  distribute(jobs: readonly Job[], signal?: AbortSignal): Promise<DistributionCheck[]>;
}

/** The built-in rule: every day floor(cents / days), the first cents % days days one cent more (split-budget.ts). */
export const EVEN_SPLIT: BudgetStrategy = {
  name: 'even',
  builtIn: true,
  distribute(jobs) {
    return Promise.resolve(
      jobs.map((job): DistributionCheck => {
        const base = baseDailyCents(job.budgetCents, job.daysOnline);
        const higherDays = daysWithExtraCent(job.budgetCents, job.daysOnline);
        return { ok: true, dailyCents: Array.from({ length: job.daysOnline }, (_, day) => (day < higherDays ? base + 1 : base)) };
      }),
    );
  },
};
