// Money is handled as an integer number of cents. numeric(14,2) holds at most 999 999 999 999.99, i.e.
// 10^14 - 1 cents, far below Number.MAX_SAFE_INTEGER (about 9 * 10^15), so every value and every
// intermediate of the split is an exact integer: no floating-point fractions ever touch an amount.

/** Formats cents as "units.cc" (12345 -> "123.45", 5 -> "0.05"). */
export function formatCents(cents: number): string {
  const remainder = cents % 100;
  return `${(cents - remainder) / 100}.${remainder < 10 ? '0' : ''}${remainder}`;
}
