import { formatCents } from './money.js';

// The budget rule, stated once: every day gets floor(cents / days), and the remaining cents go one each to
// the earliest days, so the amounts add up to the budget and differ by at most one cent. The two helpers
// below are the rule; splitBudget spells it out day by day, and the value writer (sink/job-value.ts)
// writes the same amounts straight into bytes from the helpers (a property test checks the two agree).

/** What every day gets at least, in cents: floor(cents / days), for whole cents >= 0 and days >= 1. */
export function baseDailyCents(cents: number, days: number): number {
  return (cents - (cents % days)) / days;
}

/** How many days, the earliest, get one cent more than baseDailyCents: the remainder of the division. */
export function daysWithExtraCent(cents: number, days: number): number {
  return cents % days;
}

/** The budget of `cents` over `days` days as "units.cc" amounts, day 0 first. */
export function splitBudget(cents: number, days: number): string[] {
  if (!Number.isSafeInteger(cents) || cents < 0) throw new RangeError(`budget must be a non-negative whole number of cents, got ${cents}`);
  if (!Number.isSafeInteger(days) || days < 1) throw new RangeError(`days must be a positive integer, got ${days}`);
  const base = formatCents(baseDailyCents(cents, days));
  const higher = formatCents(baseDailyCents(cents, days) + 1);
  const higherDays = daysWithExtraCent(cents, days);
  return Array.from({ length: days }, (_, day) => (day < higherDays ? higher : base));
}
