import { readAllAnswered } from '../budget/answer-reader.js';
import { EVEN_SPLIT, type BudgetStrategy } from '../budget/budget-strategy.js';
import { matchAnswers, type DistributionCheck } from '../budget/distribution-check.js';
import type { Job } from '../budget/job.js';
import { formatCents } from '../budget/money.js';
import { redact, type DistributionSetting } from '../config.js';
import type { Logger } from '../logger.js';

// A team's distribution service as the budget rule (docs/distribution-protocol.md): jobs go out in requests of
// at most MAX_JOBS_PER_REQUEST, at most MAX_REQUESTS_IN_FLIGHT at once over kept-alive connections (Node's
// built-in fetch, undici: no dependency). A request that fails as a whole (a 5xx or another status than 200, a
// body that is not {results: [...]}, a timeout, a lost connection) is sent again after a growing delay, for as
// long as it takes: the batch waiting for it holds its acknowledgement, and the stream pauses behind it
// (backpressure). A request refused for what it carries (400, 413, 422) is split until the job refused is found.
// Per job, the answer is checked (budget/distribution-check.ts); a job refused or answered wrongly gets a reason
// for its dead letter.

/** The protocol's bound on a request: at most this many jobs. */
export const MAX_JOBS_PER_REQUEST = 500;
/** Requests to the service at once, over all batches of the stream. */
export const MAX_REQUESTS_IN_FLIGHT = 4;
/**
 * Statuses by which a service refuses what a request carries, not its own state: retrying the same jobs gets the
 * same answer, so the request is split to find the job refused (isolateRefused). Every other status (401, 403 and
 * 404 are settings, 408 and 429 are load, 5xx the service's state) is a failure of the batch, retried.
 */
const CONTENT_REFUSED_STATUSES = new Set([400, 413, 422]);
const RETRY_FIRST_DELAY_MS = 250;
const RETRY_MAX_DELAY_MS = 30_000;
/** How much of an error body a reason quotes: the service may answer a megabyte of HTML. */
const MAX_QUOTED_BODY_CHARS = 200;

/** Told when the service starts failing (every request in a row failed since `since`), when it answers again, and of each request. */
export interface ServiceAvailability {
  unavailable(since: Date, reason: string): void;
  available(): void;
  /** A request ended: answered as a whole (`ok`), or failed and to be sent again. */
  requested(request: { jobs: number; durationMs: number; ok: boolean }): void;
}

export class ServiceDistribution implements BudgetStrategy {
  readonly builtIn = false;
  readonly name: string;
  private inFlight = 0;
  private readonly waitingForSlot: Array<() => void> = [];
  /** Set from the first failure after a success to the next success. */
  private unavailableSince: Date | undefined;

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly availability: ServiceAvailability,
    private readonly logger: Logger,
  ) {
    this.name = strategyName({ kind: 'service', url, timeoutMs });
  }

  async distribute(jobs: readonly Job[], signal?: AbortSignal): Promise<DistributionCheck[]> {
    const checks = new Array<DistributionCheck>(jobs.length);
    await Promise.all(
      requestsOf(jobs).map(async (indexes) => {
        const answered = await this.ask(
          indexes.map((index) => jobs[index]!),
          signal,
        );
        indexes.forEach((index, k) => (checks[index] = answered[k]!));
      }),
    );
    return checks;
  }

  /** One request's jobs (distinct job_ids), asked until the service answers it as a whole. */
  private async ask(jobs: readonly Job[], signal: AbortSignal | undefined): Promise<DistributionCheck[]> {
    const body = requestBody(jobs);
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      await this.takeSlot(signal);
      let failure: string;
      const started = performance.now();
      let refusedContent: string | undefined;
      try {
        const outcome = await this.post(body, jobs, signal);
        if (outcome.ok) {
          this.availability.requested({ jobs: jobs.length, durationMs: performance.now() - started, ok: true });
          this.answered();
          return outcome.perJob;
        }
        failure = outcome.reason;
        if (outcome.status !== undefined && CONTENT_REFUSED_STATUSES.has(outcome.status)) refusedContent = outcome.reason;
      } catch (error) {
        if (signal?.aborted === true) throw signal.reason;
        failure = describeFetchError(error, this.timeoutMs);
      } finally {
        this.giveSlotBack();
      }
      if (refusedContent !== undefined) {
        // The service is up and refuses what this request carries: sending it again would get the same answer.
        this.availability.requested({ jobs: jobs.length, durationMs: performance.now() - started, ok: true });
        this.answered();
        return this.isolateRefused(jobs, refusedContent, signal);
      }
      this.availability.requested({ jobs: jobs.length, durationMs: performance.now() - started, ok: false });
      const delayMs = retryDelayMs(attempt);
      this.failed(failure);
      this.logger.warn(
        { url: this.name, jobs: jobs.length, attempt, retryInMs: delayMs, reason: failure },
        'distribution service request failed: sending it again',
      );
      await sleep(delayMs, signal);
    }
  }

  /**
   * A request the service refused as a whole for what it carries (400, 413, 422): one of its jobs may be the
   * cause (a job_id of a megabyte, a value the service cannot read), and the others must not wait behind it
   * for ever. Halves are asked apart until the request is a single job; that job is refused, with the
   * service's reason, and goes to the dead letters. A service that refuses everything thus sets every job
   * aside, each with the reason it gave: what to fix is in `budget-cdc dead-letters`, then `budget-cdc resync`.
   */
  private async isolateRefused(jobs: readonly Job[], reason: string, signal: AbortSignal | undefined): Promise<DistributionCheck[]> {
    if (jobs.length === 1) return [{ ok: false, reason: `the service refused a request of this job alone: ${reason}` }];
    this.logger.warn(
      { url: this.name, jobs: jobs.length, reason },
      'distribution service refused a request as a whole: asking its halves apart to find the job it refuses',
    );
    const half = Math.ceil(jobs.length / 2);
    const [first, second] = await Promise.all([this.ask(jobs.slice(0, half), signal), this.ask(jobs.slice(half), signal)]);
    return [...first, ...second];
  }

  private async post(
    body: string,
    jobs: readonly Job[],
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; perJob: DistributionCheck[] } | { ok: false; reason: string; status?: number }> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
    });
    const answer = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200) {
      return {
        ok: false,
        reason: `the service answered HTTP ${response.status}: ${quoteBody(answer.toString('utf8'))}`,
        status: response.status,
      };
    }
    // The usual answer, read from the bytes without a string per amount; anything else the general way, reasons and all.
    const allAnswered = readAllAnswered(answer, jobs);
    if (allAnswered !== undefined) return { ok: true, perJob: allAnswered.map((dailyCents) => ({ ok: true, dailyCents })) };
    const text = answer.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { ok: false, reason: `the service answered 200 with a body that is not JSON: ${quoteBody(text)}` };
    }
    const matched = matchAnswers(jobs, parsed);
    if (!matched.ok) return { ok: false, reason: `the service answered 200, but ${matched.reason}` };
    if (matched.strays.length > 0) {
      this.logger.warn(
        { url: this.name, strays: matched.strays.slice(0, 5) },
        'distribution service answered for jobs it was not asked about: ignored',
      );
    }
    return { ok: true, perJob: matched.perJob };
  }

  private async takeSlot(signal: AbortSignal | undefined): Promise<void> {
    while (this.inFlight >= MAX_REQUESTS_IN_FLIGHT) {
      await new Promise<void>((resolve) => this.waitingForSlot.push(resolve));
      if (signal?.aborted === true) {
        this.waitingForSlot.shift()?.(); // the slot this waiter was woken for goes to the next one
        throw signal.reason;
      }
    }
    this.inFlight++;
  }

  private giveSlotBack(): void {
    this.inFlight--;
    this.waitingForSlot.shift()?.();
  }

  private failed(reason: string): void {
    if (this.unavailableSince !== undefined) return;
    this.unavailableSince = new Date();
    this.availability.unavailable(this.unavailableSince, reason);
  }

  private answered(): void {
    if (this.unavailableSince === undefined) return;
    this.unavailableSince = undefined;
    this.availability.available();
  }
}

/**
 * Splits jobs into requests of at most MAX_JOBS_PER_REQUEST jobs with distinct job_ids (answers are matched
 * by job_id): a job_id met again, an update in the same batch, starts a new request. Returns indexes into `jobs`.
 */
export function requestsOf(jobs: readonly Job[]): number[][] {
  const requests: number[][] = [];
  let current: number[] = [];
  let jobIds = new Set<string>();
  jobs.forEach((job, index) => {
    if (current.length === MAX_JOBS_PER_REQUEST || jobIds.has(job.jobId)) {
      requests.push(current);
      current = [];
      jobIds = new Set();
    }
    current.push(index);
    jobIds.add(job.jobId);
  });
  if (current.length > 0) requests.push(current);
  return requests;
}

/**
 * The request's JSON, `{"jobs":[{job_id, budget, days_online, created_at}, …]}`, as JSON.stringify writes it, built
 * as text: no object per job. The budget is a "units.cc" string, never a JSON number.
 */
export function requestBody(jobs: readonly Job[]): string {
  let body = '{"jobs":[';
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    body +=
      `${i === 0 ? '' : ','}{"job_id":${JSON.stringify(job.jobId)},"budget":"${formatCents(job.budgetCents)}",` +
      `"days_online":${job.daysOnline},"created_at":"${new Date(job.createdAtMs).toISOString()}"}`;
  }
  return body + ']}';
}

/** 250 ms, doubling up to 30 s, with ±20% jitter so that requests failing together do not come back together. */
export function retryDelayMs(attempt: number): number {
  const base = Math.min(RETRY_MAX_DELAY_MS, RETRY_FIRST_DELAY_MS * 2 ** Math.min(attempt - 1, 20));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `the service did not answer within ${timeoutMs / 1000} s (--distribution-timeout)`;
  }
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
  return detail === undefined ? `the request failed: ${message}` : `the request failed: ${message} (${detail})`;
}

function quoteBody(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  if (oneLine === '') return '(empty body)';
  return oneLine.length <= MAX_QUOTED_BODY_CHARS ? oneLine : `${oneLine.slice(0, MAX_QUOTED_BODY_CHARS - 1)}…`;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The name a strategy is recorded and shown by: `even`, or the service's URL without its password (a changed
 * password is not a changed rule). The one place that says so: the consumer records it, `status` compares with it.
 */
export function strategyName(setting: DistributionSetting): string {
  return setting.kind === 'even' ? EVEN_SPLIT.name : redact(setting.url);
}

/** The strategy `setting` names: the built-in even split, or the service at its URL. */
export function makeBudgetStrategy(setting: DistributionSetting, availability: ServiceAvailability, logger: Logger): BudgetStrategy {
  if (setting.kind === 'even') return EVEN_SPLIT;
  return new ServiceDistribution(setting.url, setting.timeoutMs, availability, logger);
}
