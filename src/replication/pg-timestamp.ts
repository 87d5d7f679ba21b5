// pgoutput sends timestamptz values as text, formatted by the walsender session's DateStyle and TimeZone.
// The replication connection asks for DateStyle=ISO and TimeZone=UTC, but the parser accepts any ISO
// output with any offset (hours, minutes and seconds, as old local-mean-time zones have), so a server or
// database whose TimeZone is something else still yields the right instant.

const ISO_TIMESTAMPTZ = /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?( BC)?$/;

/** The largest instant a JavaScript Date (and so an ISO string) can hold: 8.64e15 ms after 1970. */
export const MAX_DATE_MS = 8.64e15;

/**
 * Parses PostgreSQL's ISO text of a timestamptz into milliseconds since 1970 (UTC), truncated (floored)
 * to the millisecond. Throws an Error saying why for 'infinity', other DateStyles, or out-of-range years.
 */
export function parseTimestamptzMs(text: string): number {
  // Rows of one bulk load usually share created_at (a default now()): parse each distinct text once.
  if (text === lastText) return lastMs;
  const ms = parseUncached(text);
  lastText = text;
  lastMs = ms;
  return ms;
}

let lastText = '';
let lastMs = 0;

function parseUncached(text: string): number {
  const match = ISO_TIMESTAMPTZ.exec(text);
  if (match === null) {
    if (text === 'infinity' || text === '-infinity') throw new Error(`created_at is ${text}: a job must have a finite creation time`);
    throw new Error(`created_at "${text}" is not an ISO timestamp with an offset (is the DateStyle ISO?)`);
  }
  const [, year, month, day, hour, minute, second, fraction, sign, offsetHours, offsetMinutes, offsetSeconds, bc] = match;
  // ISO years have no year 0: 1 BC is astronomical year 0, 2 BC is -1.
  const astronomicalYear = bc === undefined ? Number(year) : 1 - Number(year);
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(astronomicalYear, Number(month) - 1, Number(day));
  date.setUTCHours(Number(hour), Number(minute), Number(second), 0);
  const wallMs = date.getTime();
  if (Number.isNaN(wallMs)) throw new Error(`created_at "${text}" is outside the range of representable dates`);
  const fractionMs = fraction === undefined ? 0 : Math.floor(Number(fraction.padEnd(6, '0')) / 1000);
  const offsetMs =
    (Number(offsetHours) * 3600 + Number(offsetMinutes ?? 0) * 60 + Number(offsetSeconds ?? 0)) * 1000 * (sign === '-' ? -1 : 1);
  const ms = wallMs + fractionMs - offsetMs;
  if (Math.abs(ms) > MAX_DATE_MS) throw new Error(`created_at "${text}" is outside the range of representable dates`);
  return ms;
}
