import type { DistributedJob } from './distribution-check.js';

// The usual answer of a distribution service, read straight from the response's bytes: every job of the request
// answered once with amounts that pass the checks. JSON.parse would need the body decoded into a string first,
// then make a string for every amount (a million jobs of two weeks are 15 million strings) only for
// distribution-check.ts to read them back; here each amount goes from its bytes into cents. Anything else (a
// refusal, a wrong count or sum, a stray result, an unknown field, an escape or a non-ASCII byte in a string, a
// JSON number) makes this reader give up, and the caller reads the response with JSON.parse and matchAnswers,
// whose result, reasons included, is then the only one. Where this reader answers, the two agree
// (test/unit/answer-reader.test.ts). One function with its position in a local: this runs for every byte.

/** Units of up to 13 digits keep cents below 10^15, exact in a double (as distribution-check.ts reads them). */
const MAX_UNITS_DIGITS = 13;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const RESULTS_KEY = Buffer.from('"results"');
const JOB_ID_KEY = Buffer.from('"job_id"');
const DAILY_KEY = Buffer.from('"daily"');

/**
 * Each job's daily amounts in cents, in the order of `jobs`, when `body` is `{"results":[…]}` answering every
 * job exactly once with `daily` amounts that have its days' count and add up to its budget; undefined otherwise.
 * Job_ids are compared byte for byte as printable ASCII; any other job_id leaves the answer to the general path.
 */
export function readAllAnswered(body: Uint8Array, jobs: readonly DistributedJob[]): number[][] | undefined {
  const daily = new Array<number[] | undefined>(jobs.length);
  const end = body.length;
  let answered = 0;
  let at = skipSpace(body, 0);
  if (body[at] !== OPEN_BRACE) return undefined;
  at = skipSpace(body, at + 1);
  if (!startsWith(body, at, RESULTS_KEY)) return undefined;
  at = skipSpace(body, at + RESULTS_KEY.length);
  if (body[at] !== COLON) return undefined;
  at = skipSpace(body, at + 1);
  if (body[at] !== OPEN_BRACKET) return undefined;
  at = skipSpace(body, at + 1);
  /** The job the next result is most likely for: services usually answer in the order asked. */
  let nextJob = 0;
  let indexOfJob: Map<string, number> | undefined;
  if (body[at] === CLOSE_BRACKET) at++;
  else {
    for (;;) {
      // One result: {"job_id": "…", "daily": ["…", …]}, the two fields in either order and nothing else.
      if (body[at] !== OPEN_BRACE) return undefined;
      at = skipSpace(body, at + 1);
      let job = -1;
      let amounts: number[] | undefined;
      for (;;) {
        if (job === -1 && startsWith(body, at, JOB_ID_KEY)) {
          at = skipSpace(body, at + JOB_ID_KEY.length);
          if (body[at] !== COLON) return undefined;
          at = skipSpace(body, at + 1);
          if (body[at] !== QUOTE) return undefined;
          const start = at + 1;
          let close = start;
          while (close < end && body[close] !== QUOTE) {
            const byte = body[close]!;
            if (byte < 0x20 || byte > 0x7e || byte === BACKSLASH) return undefined;
            close++;
          }
          if (close >= end) return undefined;
          const expected = jobs[nextJob];
          if (expected !== undefined && sameAscii(body, start, close, expected.jobId)) job = nextJob;
          else {
            indexOfJob ??= new Map(jobs.map((each, index) => [each.jobId, index]));
            job = indexOfJob.get(Buffer.from(body.buffer, body.byteOffset + start, close - start).toString('latin1')) ?? -2;
            if (job === -2) return undefined;
          }
          nextJob = job + 1;
          at = skipSpace(body, close + 1);
        } else if (amounts === undefined && startsWith(body, at, DAILY_KEY)) {
          at = skipSpace(body, at + DAILY_KEY.length);
          if (body[at] !== COLON) return undefined;
          at = skipSpace(body, at + 1);
          if (body[at] !== OPEN_BRACKET) return undefined;
          at = skipSpace(body, at + 1);
          amounts = [];
          if (body[at] === CLOSE_BRACKET) at = skipSpace(body, at + 1);
          else {
            for (;;) {
              // "units.cc": digits, a point, two digits, as distribution-check.ts accepts them.
              if (body[at] !== QUOTE) return undefined;
              let i = at + 1;
              let cents = 0;
              const first = i;
              for (let byte = body[i]!; byte >= DIGIT_0 && byte <= DIGIT_9; byte = body[++i]!) cents = cents * 10 + byte - DIGIT_0;
              if (i === first || i - first > MAX_UNITS_DIGITS || body[i] !== DOT) return undefined;
              const tens = body[i + 1]!;
              const ones = body[i + 2]!;
              if (tens < DIGIT_0 || tens > DIGIT_9 || ones < DIGIT_0 || ones > DIGIT_9 || body[i + 3] !== QUOTE) return undefined;
              amounts.push(cents * 100 + (tens - DIGIT_0) * 10 + (ones - DIGIT_0));
              at = skipSpace(body, i + 4);
              if (body[at] === COMMA) at = skipSpace(body, at + 1);
              else if (body[at] === CLOSE_BRACKET) {
                at = skipSpace(body, at + 1);
                break;
              } else return undefined;
            }
          }
        } else return undefined;
        if (body[at] === COMMA) at = skipSpace(body, at + 1);
        else if (body[at] === CLOSE_BRACE) break;
        else return undefined;
      }
      at = skipSpace(body, at + 1);
      if (job < 0 || amounts === undefined || daily[job] !== undefined) return undefined;
      const { daysOnline, budgetCents } = jobs[job]!;
      if (amounts.length !== daysOnline) return undefined;
      // Amounts are never negative, so a sum past 2^53 (inexact) is already far above any budget.
      let sum = 0;
      for (let day = 0; day < amounts.length; day++) sum += amounts[day]!;
      if (sum !== budgetCents) return undefined;
      daily[job] = amounts;
      answered++;
      if (body[at] === COMMA) at = skipSpace(body, at + 1);
      else if (body[at] === CLOSE_BRACKET) {
        at++;
        break;
      } else return undefined;
    }
  }
  at = skipSpace(body, at);
  if (body[at] !== CLOSE_BRACE || skipSpace(body, at + 1) !== end) return undefined;
  return answered === jobs.length ? (daily as number[][]) : undefined;
}

/** JSON's whitespace: space, tab, line feed, carriage return. */
function skipSpace(body: Uint8Array, at: number): number {
  for (let byte = body[at]; byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09; byte = body[++at]);
  return at;
}

function startsWith(body: Uint8Array, at: number, prefix: Buffer): boolean {
  if (at + prefix.length > body.length) return false;
  for (let i = 0; i < prefix.length; i++) if (body[at + i] !== prefix[i]) return false;
  return true;
}

/** Whether body[start, end) holds `text`, printable ASCII; checked before as printable without a quote or backslash. */
function sameAscii(body: Uint8Array, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (body[start + i] !== text.charCodeAt(i)) return false;
  return true;
}
