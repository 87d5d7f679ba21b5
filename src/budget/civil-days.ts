// Proleptic Gregorian calendar arithmetic on whole days since 1970-01-01, for any year (negative ones
// too), in integers: what Date does, without a Date object per row on the hot path.
// The algorithms are Howard Hinnant's days_from_civil and civil_from_days
// (https://howardhinnant.github.io/date_algorithms.html).

const DAYS_PER_ERA = 146_097; // 400 years
const DAYS_0000_03_01_TO_1970_01_01 = 719_468;

/** Days from 1970-01-01 to `year`-`month`-`day` (month 1-12; year 0 is 1 BC). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * DAYS_PER_ERA + dayOfEra - DAYS_0000_03_01_TO_1970_01_01;
}

/** The date `days` after 1970-01-01, written into `into` as [year, month 1-12, day 1-31]: no array per call. */
export function civilFromDays(days: number, into: [number, number, number]): void {
  const z = days + DAYS_0000_03_01_TO_1970_01_01;
  const era = Math.floor(z / DAYS_PER_ERA);
  const dayOfEra = z - era * DAYS_PER_ERA;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  into[0] = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  into[1] = month;
  into[2] = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
}
