import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCents } from '../../src/budget/money.js';
import { parseCents } from '../../src/replication/money-text.js';
import { splitBudget } from '../../src/budget/split-budget.js';

/** numeric(14,2) at its largest, 999 999 999 999.99, in cents. */
const MAX_BUDGET_CENTS = 99_999_999_999_999;
const MAX_DAYS_ONLINE = 3650;
const AMOUNT_TEXT = /^\d+\.\d{2}$/;

// The oracle reads amounts with BigInt, independently of src/budget/money.ts, so that a float slip in
// the code under test cannot cancel out against the same slip in the check.
function centsOf(text: string): bigint {
  const match = /^(\d+)\.(\d{2})$/.exec(text);
  if (match === null) throw new Error(`not an amount with two decimals: ${JSON.stringify(text)}`);
  return BigInt(match[1]!) * 100n + BigInt(match[2]!);
}

const budgetCents = fc.oneof(
  fc.integer({ min: 0, max: MAX_BUDGET_CENTS }),
  // Small budgets, where days often outnumber cents and many days get 0.00.
  fc.integer({ min: 0, max: 10_000 }),
  fc.constantFrom(0, 1, MAX_BUDGET_CENTS, MAX_BUDGET_CENTS - 1),
);
const daysOnline = fc.oneof(fc.integer({ min: 1, max: MAX_DAYS_ONLINE }), fc.constantFrom(1, 2, 3, 7, 30, MAX_DAYS_ONLINE));

describe('splitBudget', () => {
  it('returns one amount per day, each "units.cc", adding up to the budget exactly', () => {
    fc.assert(
      fc.property(budgetCents, daysOnline, (cents, days) => {
        const daily = splitBudget(cents, days);
        expect(daily).toHaveLength(days);
        expect(daily.filter((amount) => !AMOUNT_TEXT.test(amount))).toEqual([]);
        expect(daily.reduce((sum, amount) => sum + centsOf(amount), 0n)).toBe(BigInt(cents));
      }),
      { numRuns: 300 },
    );
  });

  it('gives the extra cents to the earliest days: non-increasing, at most one cent apart', () => {
    fc.assert(
      fc.property(budgetCents, daysOnline, (cents, days) => {
        const amounts = splitBudget(cents, days).map(centsOf);
        const increases = amounts.flatMap((amount, day) => (day > 0 && amount > amounts[day - 1]! ? [day] : []));
        expect(increases, 'days whose amount is higher than the day before').toEqual([]);
        // Non-increasing, so the first day holds the maximum and the last the minimum.
        expect(amounts[0]! - amounts[amounts.length - 1]! <= 1n).toBe(true);
        // Exactly `cents mod days` days carry the extra cent.
        const higher = amounts.filter((amount) => amount > amounts[amounts.length - 1]!).length;
        expect(BigInt(higher)).toBe(BigInt(cents) % BigInt(days));
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    [10_000, 3, ['33.34', '33.33', '33.33']],
    [0, 5, ['0.00', '0.00', '0.00', '0.00', '0.00']],
    [1, 2, ['0.01', '0.00']],
    [5, 1, ['0.05']],
    [1001, 10, ['1.01', '1.00', '1.00', '1.00', '1.00', '1.00', '1.00', '1.00', '1.00', '1.00']],
  ])('splits %i cents over %i days as %j', (cents, days, expected) => {
    expect(splitBudget(cents, days)).toEqual(expected);
  });

  it('splits the largest budget over the longest run without losing a cent', () => {
    const daily = splitBudget(MAX_BUDGET_CENTS, MAX_DAYS_ONLINE);
    // 99 999 999 999 999 = 3650 * 27 397 260 273 + 3549
    expect(daily[0]).toBe('273972602.74');
    expect(daily[3548]).toBe('273972602.74');
    expect(daily[3549]).toBe('273972602.73');
    expect(daily[MAX_DAYS_ONLINE - 1]).toBe('273972602.73');
  });

  it.each([
    [-1, 1],
    [1.5, 1],
    [Number.NaN, 1],
    [100, 0],
    [100, -3],
    [100, 2.5],
  ])('rejects cents %d over %d days with a RangeError', (cents, days) => {
    expect(() => splitBudget(cents, days)).toThrow(RangeError);
  });
});

describe('parseCents and formatCents', () => {
  it('round-trip every numeric(14,2) amount', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_BUDGET_CENTS }), (cents) => {
        const text = formatCents(cents);
        expect(text).toMatch(AMOUNT_TEXT);
        expect(centsOf(text)).toBe(BigInt(cents));
        expect(parseCents(text)).toBe(cents);
      }),
      { numRuns: 1000 },
    );
  });

  it('parses PostgreSQL texts of numeric(14,2)', () => {
    expect(parseCents('0.00')).toBe(0);
    expect(parseCents('0.05')).toBe(5);
    expect(parseCents('100.00')).toBe(10_000);
    expect(parseCents('123.45')).toBe(12_345);
    expect(parseCents('999999999999.99')).toBe(MAX_BUDGET_CENTS);
  });

  it('formats cents with two decimals and no leading zeros', () => {
    expect(formatCents(0)).toBe('0.00');
    expect(formatCents(5)).toBe('0.05');
    expect(formatCents(10)).toBe('0.10');
    expect(formatCents(12_345)).toBe('123.45');
    expect(formatCents(MAX_BUDGET_CENTS)).toBe('999999999999.99');
  });

  it.each(['NaN', 'Infinity', '-1.00', '1', '1.0', '1.000', '1e3', ' 1.00', '', '1000000000000.00'])(
    'returns undefined for %j, which is not a numeric(14,2) text',
    (text) => {
      expect(parseCents(text)).toBeUndefined();
    },
  );
});
