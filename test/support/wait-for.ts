import { setTimeout as delay } from 'node:timers/promises';
import { inspect } from 'node:util';

const SECOND = 1000;
const DEFAULT_TIMEOUT_MS = 30 * SECOND;
const DEFAULT_INTERVAL_MS = 50;

/** Options of `waitFor`. */
export interface WaitForOptions {
  /** Give up after this long; default 30 s. */
  timeoutMs?: number;
  /** Pause between two probes; default 50 ms. */
  intervalMs?: number;
  /** What was awaited, for the timeout error; default "condition". */
  message?: string;
}

/**
 * Polls `probe` until it returns a truthy value and returns that value. A probe that throws counts as
 * "not yet", so a server that is still starting can be probed by simply connecting to it.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitForOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  let lastOutcome: { value: unknown } | { error: unknown } | undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as NonNullable<T>;
      lastOutcome = { value };
    } catch (error) {
      lastOutcome = { error };
    }
    // Checked after the probe so that even a zero timeout probes once.
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const what = options.message ?? 'condition';
  if (lastOutcome !== undefined && 'error' in lastOutcome) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last error: ${describe(lastOutcome.error)}`, {
      cause: lastOutcome.error,
    });
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${inspect(lastOutcome?.value)}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : inspect(error);
}
