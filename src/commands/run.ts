import type { Config, HealthConfig } from '../config.js';
import { startObservedConsumer } from './observed-consumer.js';
import { checkConnection, checkStreamingPrerequisites } from '../db/check-database.js';
import { withDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { startHttpServer } from '../ops/http-server.js';
import type { Logger } from '../logger.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
/** A signal this soon after the first is the same one delivered twice, not a second one. */
const REPEATED_SIGNAL_MS = 1_000;

/** Hooks of `runPipeline` for callers that own more than the pipeline (the quickstart's local servers). */
export interface RunPipelineHooks {
  /** Called once the consumer has started, with the health endpoint's URL (undefined when it is off). */
  onStarted?(endpointUrl: string | undefined): void;
  /** Called on a second signal, just before the process exits without finishing. */
  beforeForcedExit?(): void;
}

/**
 * `budget-cdc run`: applies pending migrations, starts the consumer and the health endpoint, and streams until
 * SIGINT or SIGTERM; then writes and acknowledges the batch in flight. A second signal exits at once.
 * Returns the exit code.
 */
export async function runPipeline(config: Config, health: HealthConfig, logger: Logger, hooks: RunPipelineHooks = {}): Promise<number> {
  // Applying pending migrations first makes `run` the only command a new deployment needs; it is
  // idempotent and takes the migrator's lock, so several consumers starting at once are safe.
  const migrated = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    // Before any DDL: a server that cannot stream must not be left with our tables and publication.
    await checkStreamingPrerequisites(db, config.slotName);
    return migrate(db, config.publicationName);
  });
  if (migrated.applied.length > 0 || migrated.publication !== 'unchanged') {
    logger.info({ applied: migrated.applied, publication: migrated.publication }, 'schema migrated');
  }
  const consumer = await startObservedConsumer(config, logger);
  let endpoint;
  try {
    endpoint = await startHttpServer(consumer, health, logger.child({ component: 'http' }));
  } catch (error) {
    await consumer.stop();
    throw error;
  }
  let firstSignalAtMs: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    // npm and npx forward the terminal's Ctrl-C to their child, which also gets it from the terminal: one
    // keypress arrives twice within milliseconds, and must not count as the second signal that forces the exit.
    if (firstSignalAtMs !== undefined && Date.now() - firstSignalAtMs < REPEATED_SIGNAL_MS) return;
    if (firstSignalAtMs !== undefined) {
      logger.warn({ signal }, 'second signal: exiting without finishing the batch in flight');
      hooks.beforeForcedExit?.();
      process.exit(EXIT_FAILURE);
    }
    firstSignalAtMs = Date.now();
    logger.info({ signal }, 'stopping: writing and acknowledging the batch in flight');
    void consumer.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    hooks.onStarted?.(endpoint?.url);
    await consumer.done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await endpoint?.close();
  }
  logger.info('stopped');
  return EXIT_OK;
}
