// PostgreSQL's text of a numeric(14,2) into integer cents (see budget/money.ts for why cents).

const MONEY_TEXT = /^(\d{1,12})\.(\d{2})$/;

/** Parses PostgreSQL's text of a numeric(14,2) ("100.00") into cents; undefined when it is not such a text (e.g. NaN). */
export function parseCents(text: string): number | undefined {
  const match = MONEY_TEXT.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * 100 + Number(match[2]);
}

/**
 * Reads cents from the text of a numeric(14,2) in `bytes[start, end)`, only in the form numeric_out prints
 * ("0.05", "123.45": no sign, no leading zero); NaN for anything else, which parseCents then judges.
 */
export function readCents(bytes: Buffer, start: number, end: number): number {
  const units = end - 3 - start;
  if (units < 1 || units > 12 || bytes[end - 3] !== DOT || (units > 1 && bytes[start] === DIGIT_0)) return Number.NaN;
  let cents = 0;
  for (let i = start; i < end; i++) {
    if (i === end - 3) continue;
    const digit = bytes[i]! - DIGIT_0;
    if (digit < 0 || digit > 9) return Number.NaN;
    cents = cents * 10 + digit;
  }
  return cents;
}

const DOT = 0x2e;
const DIGIT_0 = 0x30;
