import type { Cluster, Redis } from 'ioredis';
import type pg from 'pg';
import { formatCents, weekdaySplitCents } from '../../examples/distribute-budget-service/rules.mjs';
import { compareRedisWithTable, type OracleRule } from './table-oracle.js';

// The table oracle (table-oracle.ts) with the example service's weekday rule instead of the even split: the
// issue asks for the service's answers to be checked against an oracle that uses the same rule, and the rule
// is the example's pure function (rules.mjs), not anything of src/. The instants still come from SQL.

/** The weekday rule of examples/distribute-budget-service, from the budget as the table prints it. */
export const WEEKDAY_RULE: OracleRule = (budget, days, createdMs) => {
  const [units, cents = '00'] = budget.split('.');
  const budgetCents = BigInt(units!) * 100n + BigInt(cents.padEnd(2, '0'));
  return weekdaySplitCents(budgetCents, days, Number(createdMs)).map(formatCents);
};

/** Every difference between Redis (keys under `prefix`) and the table under the weekday rule, as lines; empty when they agree. */
export function compareRedisWithWeekdayTable(sql: pg.Client, redis: Redis | Cluster, prefix: string): Promise<string[]> {
  return compareRedisWithTable(sql, redis, prefix, WEEKDAY_RULE);
}
