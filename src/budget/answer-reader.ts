import type { DistributedJob } from './distribution-check.js';

// The usual answer of a distribution service, read straight from the response text: every job of the request
// answered once with amounts that pass the checks. JSON.parse would make a string for every amount (a million
// jobs of two weeks are 15 million strings) only for distribution-check.ts to read them back; here each amount
// goes from its characters into cents. Anything else (a refusal, a wrong count or sum, a stray result, an unknown
// field, an escape in a string, a JSON number) makes this reader give up, and the caller reads the response with
// JSON.parse and matchAnswers, whose result, reasons included, is then the only one. Where this reader answers,
// the two agree (test/unit/answer-reader.test.ts).

/** Units of up to 13 digits keep cents below 10^15, exact in a double (as distribution-check.ts reads them). */
const MAX_UNITS_DIGITS = 13;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** Thrown inside the reader when the text is not the usual answer: caught at its top, never seen outside. */
const GIVE_UP = new Error('not the usual answer');

/**
 * Each job's daily amounts in cents, in the order of `jobs`, when `text` is `{"results":[…]}` answering every
 * job exactly once with `daily` amounts that have its days' count and add up to its budget; undefined otherwise.
 */
export function readAllAnswered(text: string, jobs: readonly DistributedJob[]): number[][] | undefined {
  try {
    return new AnswerReader(text, jobs).read();
  } catch (error) {
    if (error === GIVE_UP) return undefined;
    throw error;
  }
}

class AnswerReader {
  private at = 0;
  private readonly daily: Array<number[] | undefined>;
  /** The job the next result is most likely for: services usually answer in the order asked. */
  private nextJob = 0;
  private indexOfJob: Map<string, number> | undefined;

  constructor(
    private readonly text: string,
    private readonly jobs: readonly DistributedJob[],
  ) {
    this.daily = new Array<number[] | undefined>(jobs.length);
  }

  read(): number[][] {
    this.expect(OPEN_BRACE);
    this.expectKey('results');
    this.expect(OPEN_BRACKET);
    if (!this.consume(CLOSE_BRACKET)) {
      do this.readResult();
      while (this.consume(COMMA));
      this.expect(CLOSE_BRACKET);
    }
    this.expect(CLOSE_BRACE);
    this.skipSpace();
    if (this.at !== this.text.length) throw GIVE_UP;
    const daily = this.daily;
    for (let index = 0; index < daily.length; index++) if (daily[index] === undefined) throw GIVE_UP;
    return daily as number[][];
  }

  /** `{"job_id": "…", "daily": ["…", …]}`, the two fields in either order and nothing else. */
  private readResult(): void {
    this.expect(OPEN_BRACE);
    let job = -1;
    let amounts: number[] | undefined;
    do {
      const key = this.readPlainString();
      this.expect(COLON);
      if (key === 'job_id' && job === -1) job = this.readJobIndex();
      else if (key === 'daily' && amounts === undefined) amounts = this.readAmounts();
      else throw GIVE_UP;
    } while (this.consume(COMMA));
    this.expect(CLOSE_BRACE);
    if (job === -1 || amounts === undefined || this.daily[job] !== undefined) throw GIVE_UP;
    const { daysOnline, budgetCents } = this.jobs[job]!;
    if (amounts.length !== daysOnline) throw GIVE_UP;
    let sum = 0;
    for (let day = 0; day < amounts.length; day++) sum += amounts[day]!;
    if (sum !== budgetCents) throw GIVE_UP;
    this.daily[job] = amounts;
  }

  /** The index of the job a job_id string names; the expected one is compared in place, with no string made. */
  private readJobIndex(): number {
    this.skipSpace();
    const text = this.text;
    if (text.charCodeAt(this.at) !== QUOTE) throw GIVE_UP;
    const start = this.at + 1;
    const expected = this.jobs[this.nextJob];
    if (expected !== undefined) {
      const end = start + expected.jobId.length;
      if (text.charCodeAt(end) === QUOTE && text.startsWith(expected.jobId, start) && !hasEscape(expected.jobId)) {
        this.at = end + 1;
        return this.nextJob++;
      }
    }
    const jobId = this.readPlainString();
    if (this.indexOfJob === undefined) this.indexOfJob = new Map(this.jobs.map((job, index) => [job.jobId, index]));
    const index = this.indexOfJob.get(jobId);
    if (index === undefined) throw GIVE_UP;
    this.nextJob = index + 1;
    return index;
  }

  /** `["units.cc", …]` in cents: digits, a point, two digits, as distribution-check.ts accepts them. */
  private readAmounts(): number[] {
    this.expect(OPEN_BRACKET);
    const amounts: number[] = [];
    if (this.consume(CLOSE_BRACKET)) return amounts;
    const text = this.text;
    do {
      this.skipSpace();
      if (text.charCodeAt(this.at) !== QUOTE) throw GIVE_UP;
      let i = this.at + 1;
      let cents = 0;
      let digits = 0;
      for (let digit = text.charCodeAt(i) - DIGIT_0; digit >= 0 && digit <= 9; digit = text.charCodeAt(++i) - DIGIT_0) {
        cents = cents * 10 + digit;
        digits++;
      }
      if (digits === 0 || digits > MAX_UNITS_DIGITS || text.charCodeAt(i) !== DOT) throw GIVE_UP;
      const tens = text.charCodeAt(i + 1) - DIGIT_0;
      const ones = text.charCodeAt(i + 2) - DIGIT_0;
      if (!(tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9) || text.charCodeAt(i + 3) !== QUOTE) throw GIVE_UP;
      amounts.push(cents * 100 + tens * 10 + ones);
      this.at = i + 4;
    } while (this.consume(COMMA));
    this.expect(CLOSE_BRACKET);
    return amounts;
  }

  /** A string with no escape in it (a key, a job_id the reader did not expect); gives up at a backslash. */
  private readPlainString(): string {
    this.skipSpace();
    const text = this.text;
    if (text.charCodeAt(this.at) !== QUOTE) throw GIVE_UP;
    const start = this.at + 1;
    const end = text.indexOf('"', start);
    if (end === -1) throw GIVE_UP;
    const value = text.slice(start, end);
    if (hasEscape(value)) throw GIVE_UP;
    this.at = end + 1;
    return value;
  }

  private expectKey(key: string): void {
    if (this.readPlainString() !== key) throw GIVE_UP;
    this.expect(COLON);
  }

  private expect(code: number): void {
    if (!this.consume(code)) throw GIVE_UP;
  }

  private consume(code: number): boolean {
    this.skipSpace();
    if (this.text.charCodeAt(this.at) !== code) return false;
    this.at++;
    return true;
  }

  /** JSON's whitespace: space, tab, line feed, carriage return. */
  private skipSpace(): void {
    const text = this.text;
    for (
      let code = text.charCodeAt(this.at);
      code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
      code = text.charCodeAt(++this.at)
    );
  }
}

/** Whether a string would be written with an escape in JSON (a quote, a backslash, a control character). */
function hasEscape(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === QUOTE || code === BACKSLASH) return true;
  }
  return false;
}
