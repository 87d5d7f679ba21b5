import { formatCents } from './money.js';

/**
 * Splits a budget of `cents` over `days` days, exactly: every day gets floor(cents / days) and the
 * remaining cents go one each to the earliest days, so the amounts add up to the budget and differ by at
 * most one cent. Returns the amounts as "units.cc" strings, day 0 first.
 */
export function splitBudget(cents: number, days: number): string[] {
  const { base, higher, higherDays } = dailyAmounts(cents, days);
  const daily = new Array<string>(days);
  for (let day = 0; day < days; day++) daily[day] = day < higherDays ? higher : base;
  return daily;
}

/**
 * The split in its compact form: the first `higherDays` days get `higher` (one cent more than `base`),
 * the others `base`. Amounts as "units.cc".
 */
export function dailyAmounts(cents: number, days: number): { base: string; higher: string; higherDays: number } {
  if (!Number.isSafeInteger(cents) || cents < 0) throw new RangeError(`budget must be a non-negative whole number of cents, got ${cents}`);
  if (!Number.isSafeInteger(days) || days < 1) throw new RangeError(`days must be a positive integer, got ${days}`);
  const base = baseDailyCents(cents, days);
  const higherDays = daysWithExtraCent(cents, days);
  const baseText = formatCents(base);
  return { base: baseText, higher: higherDays > 0 ? formatCents(base + 1) : baseText, higherDays };
}

/** What every day gets at least, in cents: floor(cents / days). Arguments as dailyAmounts checks them. */
export function baseDailyCents(cents: number, days: number): number {
  return (cents - (cents % days)) / days;
}

/** How many days, the earliest, get one cent more than baseDailyCents: the remainder of the division. */
export function daysWithExtraCent(cents: number, days: number): number {
  return cents % days;
}
