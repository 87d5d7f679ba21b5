// Types of rules.mjs for budget-cdc's TypeScript tests; a copy of the service in JavaScript does not need this file.

export declare const MAX_DAYS_ONLINE: number;
export declare const MAX_BUDGET_INTEGER_DIGITS: number;
export declare const WEEKDAY_WEIGHTS: readonly number[];
export declare const RULE_NAMES: readonly ['even', 'weekday'];

/** A job as the protocol's request carries it; fields are unknown until the rule has read them. */
export interface RequestJob {
  job_id: string;
  budget?: unknown;
  days_online?: unknown;
  created_at?: unknown;
}

export type JobResult = { job_id: string; daily: string[] } | { job_id: string; error: string };

export declare class JobInputError extends Error {}
export declare function parseBudgetCents(budget: unknown): bigint;
export declare function parseDaysOnline(daysOnline: unknown): number;
export declare function parseCreatedAtMs(createdAt: unknown): number;
export declare function formatCents(cents: bigint): string;
export declare function evenSplitCents(cents: bigint, days: number): bigint[];
export declare function weekdaysOnline(createdAtMs: number, days: number): number[];
export declare function weekdaySplitCents(cents: bigint, days: number, createdAtMs: number): bigint[];
export declare function distributeJob(job: RequestJob, rule: 'even' | 'weekday'): JobResult;
