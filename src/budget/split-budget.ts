import { formatCents } from './money.js';

/**
 * Splits a budget of `cents` over `days` days, exactly: every day gets floor(cents / days) and the
 * remaining cents go one each to the earliest days, so the amounts add up to the budget and differ by at
 * most one cent. Returns the amounts as "units.cc" strings, day 0 first.
 */
export function splitBudget(cents: number, days: number): string[] {
  if (!Number.isSafeInteger(cents) || cents < 0) throw new RangeError(`budget must be a non-negative whole number of cents, got ${cents}`);
  if (!Number.isSafeInteger(days) || days < 1) throw new RangeError(`days must be a positive integer, got ${days}`);
  const remainder = cents % days;
  const base = (cents - remainder) / days;
  const baseText = formatCents(base);
  const daily = new Array<string>(days);
  if (remainder > 0) {
    const higherText = formatCents(base + 1);
    for (let day = 0; day < remainder; day++) daily[day] = higherText;
  }
  for (let day = remainder; day < days; day++) daily[day] = baseText;
  return daily;
}
