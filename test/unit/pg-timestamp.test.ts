import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DATE_MS, parseTimestamptzMs } from '../../src/replication/pg-timestamp.js';

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
/** The widest offsets PostgreSQL prints for a real zone are about ±15 h (old local mean times included). */
const MAX_OFFSET_SECONDS = 15 * 3600;
/** 4713-01-01 BC, the first day a PostgreSQL timestamptz can hold. */
const POSTGRES_MIN_MS = Date.parse('-004712-01-01T00:00:00Z');

// Expected instants come from Date.parse of ISO 8601 (extended years for BC and 5-digit years): a parser
// that is not the one under test.
function utc(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad expectation ${iso}`);
  return ms;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/**
 * The text PostgreSQL's timestamptz output gives with DateStyle=ISO for the instant `ms` + `extraMicros`
 * in a zone `offsetSeconds` ahead of UTC: the wall clock of that zone, the fraction without trailing zeros
 * (none when zero), the offset as ±HH[:MM[:SS]], and " BC" at the very end for years before 1 AD.
 */
function formatLikePostgres(ms: number, extraMicros: number, offsetSeconds: number): string {
  const wall = new Date(ms + offsetSeconds * SECOND_MS);
  const year = wall.getUTCFullYear();
  const yearText = pad(year > 0 ? year : 1 - year, 4);
  const micros = wall.getUTCMilliseconds() * 1000 + extraMicros;
  const fraction = micros === 0 ? '' : '.' + pad(micros, 6).replace(/0+$/, '');
  const magnitude = Math.abs(offsetSeconds);
  const [hours, minutes, seconds] = [Math.floor(magnitude / 3600), Math.floor(magnitude / 60) % 60, magnitude % 60];
  let offset = (offsetSeconds < 0 ? '-' : '+') + pad(hours, 2);
  if (minutes !== 0 || seconds !== 0) offset += ':' + pad(minutes, 2);
  if (seconds !== 0) offset += ':' + pad(seconds, 2);
  return (
    `${yearText}-${pad(wall.getUTCMonth() + 1, 2)}-${pad(wall.getUTCDate(), 2)} ` +
    `${pad(wall.getUTCHours(), 2)}:${pad(wall.getUTCMinutes(), 2)}:${pad(wall.getUTCSeconds(), 2)}` +
    `${fraction}${offset}${year > 0 ? '' : ' BC'}`
  );
}

describe('parseTimestamptzMs', () => {
  it.each([
    ['2026-11-29 10:00:00+00', '2026-11-29T10:00:00.000Z'],
    ['2026-11-29 10:00:00.123789+00', '2026-11-29T10:00:00.123Z'],
    ['2026-11-29 10:00:00.5+00', '2026-11-29T10:00:00.500Z'],
    ['2026-11-29 10:00:00.000999+00', '2026-11-29T10:00:00.000Z'],
    ['2026-11-29 10:00:00.999999+00', '2026-11-29T10:00:00.999Z'],
    ['2026-11-29 15:30:00+05:30', '2026-11-29T10:00:00.000Z'],
    ['2026-11-29 06:30:00-03:30', '2026-11-29T10:00:00.000Z'],
    ['2026-11-29 15:45:00.250001+05:45', '2026-11-29T10:00:00.250Z'],
    ['2026-11-30 00:00:00+14', '2026-11-29T10:00:00.000Z'],
    ['2026-11-28 23:00:00-11', '2026-11-29T10:00:00.000Z'],
    // Crossing a year boundary through the offset alone.
    ['2027-01-01 05:29:59+05:30', '2026-12-31T23:59:59.000Z'],
  ])('parses %j as %s', (text, iso) => {
    expect(parseTimestamptzMs(text)).toBe(utc(iso));
  });

  it('applies offsets with seconds, as old local mean time zones have', () => {
    // Europe/Amsterdam before 1937: +00:19:32.
    expect(parseTimestamptzMs('1900-01-01 00:00:00+00:19:32')).toBe(utc('1900-01-01T00:00:00Z') - (19 * 60 + 32) * SECOND_MS);
    // America/New_York before 1883-11-18 12:03:58: -04:56:02.
    expect(parseTimestamptzMs('1883-11-18 12:03:57-04:56:02')).toBe(utc('1883-11-18T16:59:59Z'));
  });

  it('floors to the millisecond before 1970 too (towards the earlier instant, not towards zero)', () => {
    expect(parseTimestamptzMs('1969-12-31 23:59:59.999999+00')).toBe(-1);
    expect(parseTimestamptzMs('1969-12-31 23:59:59.0005+00')).toBe(-1000);
  });

  it('reads years before 100 as themselves, not as 19xx', () => {
    expect(parseTimestamptzMs('0001-01-01 00:00:00+00')).toBe(utc('0001-01-01T00:00:00Z'));
    expect(parseTimestamptzMs('0050-06-15 12:00:00+00')).toBe(utc('0050-06-15T12:00:00Z'));
    expect(parseTimestamptzMs('0099-12-31 23:59:59.999999+00')).toBe(utc('0099-12-31T23:59:59.999Z'));
    expect(new Date(parseTimestamptzMs('0070-01-01 00:00:00+00')).getUTCFullYear()).toBe(70);
  });

  it('reads BC dates: 1 BC is year 0, 44 BC is year -43', () => {
    expect(parseTimestamptzMs('0001-01-01 00:00:00+00 BC')).toBe(utc('0000-01-01T00:00:00Z'));
    expect(parseTimestamptzMs('0044-03-15 12:00:00+00 BC')).toBe(utc('-000043-03-15T12:00:00Z'));
    expect(parseTimestamptzMs('0044-03-15 12:30:00.75+00:30 BC')).toBe(utc('-000043-03-15T12:00:00.750Z'));
    expect(parseTimestamptzMs('4713-01-01 00:00:00+00 BC')).toBe(POSTGRES_MIN_MS);
  });

  it('reads years of five digits', () => {
    expect(parseTimestamptzMs('10000-01-01 00:00:00+00')).toBe(utc('+010000-01-01T00:00:00Z'));
    expect(parseTimestamptzMs('275760-09-13 00:00:00+00')).toBe(MAX_DATE_MS);
  });

  it('rejects instants a JavaScript Date cannot hold', () => {
    // PostgreSQL goes up to 294276 AD; a Date only to 275760-09-13.
    expect(() => parseTimestamptzMs('275760-09-13 00:00:00.001+00')).toThrow(/outside the range/);
    expect(() => parseTimestamptzMs('294276-12-31 23:59:59.999999+00')).toThrow(/outside the range/);
  });

  it.each(['infinity', '-infinity'])('rejects %j, saying it is infinity', (text) => {
    expect(() => parseTimestamptzMs(text)).toThrow(/infinity/);
  });

  it.each([
    'Sun Nov 29 10:00:00 2026 UTC', // DateStyle Postgres
    '11/29/2026 10:00:00 UTC', // DateStyle SQL
    '29.11.2026 10:00:00 UTC', // DateStyle German
    '2026-11-29T10:00:00Z', // ISO 8601, not PostgreSQL's output
    '2026-11-29 10:00:00', // timestamp without time zone
    '2026-11-29 10:00:00.1234567+00', // more digits than microseconds
    '',
  ])('rejects %j, which is not PostgreSQL ISO timestamptz output, naming the DateStyle', (text) => {
    expect(() => parseTimestamptzMs(text)).toThrow(/DateStyle/);
  });

  it('gives back the instant, floored to the millisecond, of any text PostgreSQL prints (offsets in minutes)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: POSTGRES_MIN_MS, max: MAX_DATE_MS - 15 * HOUR_MS }),
          // Around 1970, where the sign of the instant changes.
          fc.integer({ min: -10 * 365 * 24 * HOUR_MS, max: 10 * 365 * 24 * HOUR_MS }),
          // Years 1 BC to 99 AD, which naive parsers shift to 19xx or get off by one.
          fc.integer({ min: utc('0000-01-01T00:00:00Z'), max: utc('0100-01-01T00:00:00Z') }),
        ),
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: -15 * 60, max: 15 * 60 }),
        (ms, extraMicros, offsetMinutes) => {
          const text = formatLikePostgres(ms, extraMicros, offsetMinutes * 60);
          expect(parseTimestamptzMs(text), text).toBe(ms);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('gives back the instant for offsets with seconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: POSTGRES_MIN_MS, max: MAX_DATE_MS - 15 * HOUR_MS }),
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: -MAX_OFFSET_SECONDS, max: MAX_OFFSET_SECONDS }),
        (ms, extraMicros, offsetSeconds) => {
          const text = formatLikePostgres(ms, extraMicros, offsetSeconds);
          expect(parseTimestamptzMs(text), text).toBe(ms);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('formats test inputs the way PostgreSQL does (checks of the test helper itself)', () => {
    expect(formatLikePostgres(utc('2026-11-29T10:00:00.123Z'), 789, 0)).toBe('2026-11-29 10:00:00.123789+00');
    expect(formatLikePostgres(utc('2026-11-29T10:00:00Z'), 0, 5 * 3600 + 45 * 60)).toBe('2026-11-29 15:45:00+05:45');
    expect(formatLikePostgres(utc('2026-11-29T10:00:00.500Z'), 0, -(3 * 3600 + 30 * 60))).toBe('2026-11-29 06:30:00.5-03:30');
    expect(formatLikePostgres(utc('1900-01-01T00:00:00Z'), 0, 19 * 60 + 32)).toBe('1900-01-01 00:19:32+00:19:32');
    expect(formatLikePostgres(utc('-000043-03-15T12:00:00Z'), 0, 0)).toBe('0044-03-15 12:00:00+00 BC');
  });
});
