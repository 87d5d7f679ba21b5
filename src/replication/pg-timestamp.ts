import { daysFromCivil } from '../budget/civil-days.js';

// pgoutput sends timestamptz values as text, formatted by the walsender session's DateStyle and TimeZone.
// The replication connection asks for DateStyle=ISO and TimeZone=UTC, but the parser accepts any ISO
// output with any offset (hours, minutes and seconds, as old local-mean-time zones have), so a server or
// database whose TimeZone is something else still yields the right instant.
//
// The form is "YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]][ BC]" (four or more year digits). It is read
// byte by byte, straight from the replication message: no regular expression, string or Date per row.

/** The largest instant a JavaScript Date (and so an ISO string) can hold: 8.64e15 ms after 1970. */
export const MAX_DATE_MS = 8.64e15;
/** What `readTimestamptzMs` returns for a text that is not of the ISO form above. */
export const NOT_ISO = Number.NaN;
/** What `readTimestamptzMs` returns for an ISO text outside the range a Date can hold. */
export const OUT_OF_RANGE = Number.POSITIVE_INFINITY;

const DAY_MS = 86_400_000;
const MAX_YEAR_DIGITS = 7; // PostgreSQL stops at 294276 AD; more digits can only be out of range
const DIGIT_0 = 0x30;
const HYPHEN = 0x2d;
const PLUS = 0x2b;
const COLON = 0x3a;
const SPACE = 0x20;
const DOT = 0x2e;
const BC_SUFFIX = [SPACE, 0x42 /* B */, 0x43 /* C */];

/**
 * Parses PostgreSQL's ISO text of a timestamptz into milliseconds since 1970 (UTC), truncated (floored)
 * to the millisecond. Throws an Error saying why for 'infinity', other DateStyles, or out-of-range years.
 */
export function parseTimestamptzMs(text: string): number {
  // Rows of one bulk load usually share created_at (a default now()): parse each distinct text once.
  if (text === lastText) return lastMs;
  const bytes = Buffer.from(text);
  const ms = readTimestamptzMs(bytes, 0, bytes.length);
  if (Number.isNaN(ms)) {
    if (text === 'infinity' || text === '-infinity') throw new Error(`created_at is ${text}: a job must have a finite creation time`);
    throw new Error(`created_at "${text}" is not an ISO timestamp with an offset (is the DateStyle ISO?)`);
  }
  if (ms === OUT_OF_RANGE) throw new Error(`created_at "${text}" is outside the range of representable dates`);
  lastText = text;
  lastMs = ms;
  return ms;
}

let lastText = '';
let lastMs = 0;

/**
 * The instant of the ISO timestamptz text in `bytes[start, end)`, in milliseconds since 1970 (floored);
 * NOT_ISO (NaN) when the text is not of that form, OUT_OF_RANGE when a Date cannot hold it.
 */
export function readTimestamptzMs(bytes: Buffer, start: number, end: number): number {
  let at = start;
  let year = 0;
  while (at < end && isDigit(bytes[at]!)) year = year * 10 + bytes[at++]! - DIGIT_0;
  const yearDigits = at - start;
  if (yearDigits < 4 || yearDigits > MAX_YEAR_DIGITS) return NOT_ISO;
  // Fixed layout from here: "-MM-DD HH:MM:SS" is 15 bytes.
  if (end - at < 15) return NOT_ISO;
  if (bytes[at] !== HYPHEN || bytes[at + 3] !== HYPHEN || bytes[at + 6] !== SPACE || bytes[at + 9] !== COLON || bytes[at + 12] !== COLON) {
    return NOT_ISO;
  }
  const month = twoDigits(bytes, at + 1);
  const day = twoDigits(bytes, at + 4);
  const hour = twoDigits(bytes, at + 7);
  const minute = twoDigits(bytes, at + 10);
  const second = twoDigits(bytes, at + 13);
  // Written so that NaN (a byte that is not a digit) fails every test.
  const inRange = month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 24 && minute <= 59 && second <= 60;
  if (!inRange) return NOT_ISO;
  at += 15;

  // The fraction, up to microseconds; only its first three digits count after flooring to milliseconds.
  let fractionMs = 0;
  if (at < end && bytes[at] === DOT) {
    at++;
    const fractionStart = at;
    while (at < end && isDigit(bytes[at]!)) {
      if (at - fractionStart < 3) fractionMs = fractionMs * 10 + bytes[at]! - DIGIT_0;
      at++;
    }
    const fractionDigits = at - fractionStart;
    if (fractionDigits < 1 || fractionDigits > 6) return NOT_ISO;
    for (let i = fractionDigits; i < 3; i++) fractionMs *= 10;
  }

  // The offset: ±HH, then optionally :MM and :SS.
  if (end - at < 3) return NOT_ISO;
  const sign = bytes[at];
  if (sign !== PLUS && sign !== HYPHEN) return NOT_ISO;
  let offsetSeconds = twoDigits(bytes, at + 1) * 3600;
  at += 3;
  if (end - at >= 3 && bytes[at] === COLON) {
    offsetSeconds += twoDigits(bytes, at + 1) * 60;
    at += 3;
    if (end - at >= 3 && bytes[at] === COLON) {
      offsetSeconds += twoDigits(bytes, at + 1);
      at += 3;
    }
  }
  if (Number.isNaN(offsetSeconds)) return NOT_ISO;

  // ISO years have no year 0: 1 BC is astronomical year 0, 2 BC is -1.
  let astronomicalYear = year;
  if (end - at === BC_SUFFIX.length && BC_SUFFIX.every((byte, i) => bytes[at + i] === byte)) {
    astronomicalYear = 1 - year;
    at = end;
  }
  if (at !== end) return NOT_ISO;

  const wallMs = daysFromCivil(astronomicalYear, month, day) * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000;
  if (Math.abs(wallMs) > MAX_DATE_MS) return OUT_OF_RANGE;
  const ms = wallMs + fractionMs - (sign === HYPHEN ? -offsetSeconds : offsetSeconds) * 1000;
  return Math.abs(ms) > MAX_DATE_MS ? OUT_OF_RANGE : ms;
}

function isDigit(byte: number): boolean {
  return byte >= DIGIT_0 && byte <= DIGIT_0 + 9;
}

/** The number of two ASCII digits at `at`; NaN if either is not a digit. */
function twoDigits(bytes: Buffer, at: number): number {
  const tens = bytes[at]! - DIGIT_0;
  const ones = bytes[at + 1]! - DIGIT_0;
  if (tens < 0 || tens > 9 || ones < 0 || ones > 9) return Number.NaN;
  return tens * 10 + ones;
}
