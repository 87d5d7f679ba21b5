import { Readable } from 'node:stream';

const HOUR_MS = 3_600_000;
const ROWS_PER_CHUNK = 5_000;
const MIN_BUDGET_CENTS = 1_000;
const MAX_BUDGET_CENTS = 500_000;
const MAX_DAYS_ONLINE = 30;

/**
 * A CSV (header job_id,days_online,budget,created_at) of `count` made-up jobs named `<idPrefix><n>`, created in
 * the last 12 hours and online 1 to 30 days, so every one is alive and gets a key. Generated as it is read.
 */
export function generatedJobsCsv(count: number, idPrefix: string, nowMs: number): Readable {
  async function* lines(): AsyncGenerator<string> {
    yield 'job_id,days_online,budget,created_at\n';
    for (let start = 0; start < count; start += ROWS_PER_CHUNK) {
      let chunk = '';
      for (let i = start; i < Math.min(count, start + ROWS_PER_CHUNK); i++) {
        // A fixed pseudo-random walk: the same count gives the same jobs.
        const spread = (i * 2_654_435_761) % 4_294_967_296;
        const cents = MIN_BUDGET_CENTS + (spread % (MAX_BUDGET_CENTS - MIN_BUDGET_CENTS));
        const createdAt = new Date(nowMs - (spread % (12 * HOUR_MS))).toISOString();
        chunk += `${idPrefix}${i},${1 + (i % MAX_DAYS_ONLINE)},${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')},${createdAt}\n`;
      }
      yield chunk;
    }
  }
  return Readable.from(lines(), { objectMode: false });
}
