// Test-only fault injection: how budget-cdc's tests make the example service misbehave on purpose. It is off
// unless the server is started with DISTRIBUTE_FAULTS=1 (or --faults); a copy of this service that wraps a real
// rule can delete this file and the few lines of server.mjs that use it.

/** The faults a test can arm, and what the service then does with a matching request. */
export const FAULT_MODES = Object.freeze([
  '500', // answers 500 Internal Server Error: the whole batch fails
  'stall', // answers only after stall_ms (10 s by default): longer than the client's timeout
  'drop', // destroys the connection without an answer
  'wrong-sum', // one cent more on day 0 of the job(s): the amounts no longer add up to the budget
  'wrong-count', // the last day of the job(s) left out: one amount fewer than days_online
  'malformed', // 200 with a body that is not JSON
]);
/** How long a stall lasts unless the fault says otherwise. */
export const DEFAULT_STALL_MS = 10_000;
const MAX_STALL_MS = 600_000;

/** A fault-arming request the service cannot read; the message is sent back with a 400. */
export class FaultRequestError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FaultRequestError';
  }
}

/**
 * Reads the body of POST /faults: `{"next": mode, "count": N (default 1), "job_id": optional, "stall_ms": optional}`.
 * Returns the fault to arm; throws FaultRequestError when a field is wrong.
 */
export function parseFault(body) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FaultRequestError('the body must be a JSON object');
  const { next, count = 1, job_id: jobId = null, stall_ms: stallMs = DEFAULT_STALL_MS } = body;
  if (!FAULT_MODES.includes(next))
    throw new FaultRequestError(`next must be one of ${FAULT_MODES.join(', ')}, got ${JSON.stringify(next)}`);
  if (!Number.isInteger(count) || count < 1) throw new FaultRequestError(`count must be a positive integer, got ${JSON.stringify(count)}`);
  if (jobId !== null && (typeof jobId !== 'string' || jobId === ''))
    throw new FaultRequestError('job_id, when given, must be a non-empty string');
  if (!Number.isInteger(stallMs) || stallMs < 0 || stallMs > MAX_STALL_MS) {
    throw new FaultRequestError(`stall_ms must be an integer from 0 to ${MAX_STALL_MS}, got ${JSON.stringify(stallMs)}`);
  }
  return { mode: next, remaining: count, jobId, stallMs };
}

/** The armed faults, oldest first. Each matching request uses up one count of the first fault it matches. */
export function makeFaultList() {
  let armed = [];
  return {
    arm(fault) {
      armed.push(fault);
    },
    clear() {
      armed = [];
    },
    /** What is still armed, as GET /faults shows it. */
    list() {
      return armed.map(({ mode, remaining, jobId, stallMs }) => ({ next: mode, count: remaining, job_id: jobId, stall_ms: stallMs }));
    },
    /**
     * The fault for a request carrying `jobIds`, used up by one, or undefined. A fault with a job_id matches
     * only requests that carry that job, so a test can aim at one job whatever the batching.
     */
    take(jobIds) {
      const fault = armed.find(({ jobId }) => jobId === null || jobIds.has(jobId));
      if (fault === undefined) return undefined;
      fault.remaining -= 1;
      if (fault.remaining === 0) armed = armed.filter((other) => other !== fault);
      return fault;
    },
  };
}

/**
 * Applies wrong-sum or wrong-count to the results of a request: to the job the fault names, or to every job
 * when it names none. Refused jobs (error entries) are left as they are. `addCent` adds one cent to an amount.
 */
export function corruptResults(results, fault, addCent) {
  return results.map((result) => {
    if (!('daily' in result) || (fault.jobId !== null && result.job_id !== fault.jobId)) return result;
    if (fault.mode === 'wrong-count') return { ...result, daily: result.daily.slice(0, -1) };
    return { ...result, daily: result.daily.map((amount, day) => (day === 0 ? addCent(amount) : amount)) };
  });
}
