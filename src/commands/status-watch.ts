import type { Config, HealthConfig } from '../config.js';
import { EXIT_OK } from './exit-codes.js';
import { readStatus, type StatusReport } from './status.js';
import { formatWatch, metricsUnreachable, watchJson, type WatchBlock } from './status-watch-text.js';
import { readMetricsSample, type MetricsSample } from './watch-figures.js';

const SECOND_MS = 1000;
/** How often the view is refreshed, and the interval rates and quantiles are computed over. */
const WATCH_INTERVAL_MS = 1 * SECOND_MS;
/** A scrape slower than this is given up, so that a hung endpoint does not freeze the view. */
const SCRAPE_TIMEOUT_MS = 900;
/** ANSI: cursor home, then clear the screen, so each refresh replaces the last one. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/** The /metrics URL of the consumer --http-host / --http-port name; null when the endpoint is off (port 0). */
export function metricsUrl(health: HealthConfig): string | null {
  if (health.httpPort === 0) return null;
  // A consumer listening on every address answers on loopback, and "0.0.0.0" is not an address to connect to.
  const host = health.httpHost === '0.0.0.0' ? '127.0.0.1' : health.httpHost === '::' ? '::1' : health.httpHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${health.httpPort}/metrics`;
}

/**
 * `budget-cdc status --watch [--json]`: every second, the status report and the figures of the last second
 * from the consumer's /metrics, until SIGINT or SIGTERM (exit 0). On a terminal each refresh replaces the last;
 * otherwise refreshes follow each other, separated by a blank line (--json: one JSON object per line).
 */
export async function statusWatchCommand(config: Config, thresholds: HealthConfig, json: boolean): Promise<number> {
  const stop = stopOnSignals();
  const url = metricsUrl(thresholds);
  const redraw = !json && process.stdout.isTTY === true;
  let previous: MetricsSample | null = null;
  let refreshes = 0;
  try {
    while (!stop.requested()) {
      const startedMs = Date.now();
      const block: WatchBlock | 'stop' = await Promise.race([refresh(config, thresholds, url, previous), stop.signalled]);
      if (block === 'stop') break;
      const text = json ? JSON.stringify(watchJson(block)) : formatWatch(block).join('\n');
      process.stdout.write(redraw ? `${CLEAR_SCREEN}${text}\n` : `${refreshes > 0 && !json ? '\n' : ''}${text}\n`);
      refreshes++;
      previous = block.metrics.current;
      await stop.sleep(Math.max(0, startedMs + WATCH_INTERVAL_MS - Date.now()));
    }
  } finally {
    stop.remove();
  }
  return EXIT_OK;
}

async function refresh(config: Config, thresholds: HealthConfig, url: string | null, previous: MetricsSample | null): Promise<WatchBlock> {
  const at = new Date();
  const [status, scraped] = await Promise.all([
    readStatus(config, thresholds).then(
      (report): { report: StatusReport | null; error: string | null } => ({ report, error: null }),
      // The view keeps refreshing while PostgreSQL is away: it shows why instead of ending.
      (error: unknown) => ({ report: null, error: error instanceof Error ? error.message : String(error) }),
    ),
    url === null ? Promise.resolve({ sample: null, error: null }) : scrape(url),
  ]);
  return {
    at,
    report: status.report,
    reportError: status.error,
    // After a failed scrape there is nothing to compare the next one with: previous is dropped with it.
    metrics: { url, error: scraped.error, previous: scraped.sample === null ? null : previous, current: scraped.sample },
  };
}

async function scrape(url: string): Promise<{ sample: MetricsSample | null; error: string | null }> {
  const atMs = Date.now();
  let response: Response;
  let text: string;
  try {
    // The timeout covers the body too: a connection that stalls mid-answer is as unreachable as a closed port.
    response = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    text = await response.text();
  } catch {
    return { sample: null, error: metricsUnreachable(url) };
  }
  if (response.status !== 200) {
    return { sample: null, error: `metrics endpoint ${url} answered HTTP ${response.status}: is it budget-cdc run's --http-port?` };
  }
  try {
    return { sample: readMetricsSample(text, atMs), error: null };
  } catch (error) {
    return { sample: null, error: `metrics endpoint ${url} did not answer Prometheus text: ${(error as Error).message}` };
  }
}

interface StopOnSignals {
  requested(): boolean;
  /** Settles with 'stop' at the first SIGINT or SIGTERM. */
  readonly signalled: Promise<'stop'>;
  /** Waits `ms`, or less when a signal comes first. */
  sleep(ms: number): Promise<void>;
  remove(): void;
}

/** A refresh in flight is abandoned at the first signal: it only reads, so nothing is left half done. */
function stopOnSignals(): StopOnSignals {
  let stopped = false;
  let onSignal = (): void => undefined;
  const signalled = new Promise<'stop'>((resolve) => {
    onSignal = () => {
      stopped = true;
      resolve('stop');
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => stopped,
    signalled,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        void signalled.then(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    remove: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
