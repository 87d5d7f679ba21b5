import { EventEmitter } from 'node:events';
import type { ReplicaIdentity } from '../db/table-contract.js';
import type { Lsn } from '../lsn.js';
import type { RebuildCause } from '../sink/rebuild-record.js';

/**
 * A session that streamed this long, or acknowledged a position, made progress: its failure starts a new count
 * of failures in a row (the consumer's retry delay, and what observers call failing).
 */
export const SESSION_PROGRESS_MS = 10_000;

/** What the consumer reports; logs, metrics and tests subscribe instead of being called from the hot path. */
export interface ConsumerEventMap {
  /** A replication session started streaming from the slot. */
  /** `streamedTransactions`: large transactions arrive while they run (protocol 2), or whole after commit (protocol 1). */
  'session-started': [{ slotName: string; confirmedLsn: Lsn; slotCreated: boolean; streamedTransactions: boolean }];
  /**
   * A session ended with an error; the consumer reconnects after `retryInMs`. `consecutiveFailures` counts
   * the sessions that failed since one last made progress (acknowledged a position, or streamed for a while).
   */
  'session-failed': [{ error: Error; retryInMs: number; consecutiveFailures: number }];
  /**
   * A batch was confirmed by Redis: `writes` commands, for `rows` changes applied (inserts, updates and
   * deletes; not replayed ones the checkpoint skipped) and `transactions` commits ending in it. `durationMs`:
   * from sending it to Redis's confirmation; `buildMs`: time spent decoding, budgeting and encoding it.
   */
  'batch-written': [{ writes: number; rows: number; transactions: number; durationMs: number; buildMs: number }];
  /**
   * Redis confirmed the last write of transactions that committed at `commitTimesMs` (ms since 1970, by
   * PostgreSQL's clock): from now on a reader sees them. Replayed and empty transactions are not included.
   */
  'transactions-visible': [{ commitTimesMs: readonly number[] }];
  /**
   * PostgreSQL was told that everything up to `lsn` is safely in Redis. `sinceWrittenMs`: from Redis's
   * confirmation of the batch that ends at `lsn` to now; undefined when no batch of changes ends there
   * (an idle keepalive, a transaction with no writes of its own).
   */
  acknowledged: [{ lsn: Lsn; sinceWrittenMs: number | undefined }];
  /** TRUNCATE removed every key under the prefix. */
  truncated: [{ deletedKeys: number }];
  /** A row that could not be processed was set aside; `jobId` is undefined when the change did not carry it. */
  'dead-letter': [{ jobId: string | undefined; reason: string; lsn: Lsn }];
  /**
   * What the jobs table looks like: at each session's start as it is now ('table'), and as the stream describes
   * it ('stream', a Relation message: before its first change in a session, and after each ALTER TABLE).
   * `problems`: what breaks the contract, each with what to do (contractProblems); empty when it holds.
   */
  'table-described': [{ source: 'table' | 'stream'; replicaIdentity: ReplicaIdentity; missingColumns: string[]; problems: string[] }];
  /** Redis is being rebuilt from the table (new slot, lost state, Redis went back in time, resync requested). */
  'resync-started': [{ cause: RebuildCause; reason: string }];
  'resync-progress': [{ totalRows: number; rowsDone: number }];
  'resync-finished': [{ rowsWritten: number; deadLetters: number; staleKeysDeleted: number; durationMs: number; cause: RebuildCause }];
  /** Fewer replicas than --redis-min-replicas confirmed a write (WAIT): its acknowledgement is held. */
  'replicas-behind': [{ replicas: number; required: number }];
  /** On a Redis Cluster, slot transactions of a batch sent again after MOVED, ASK, TRYAGAIN or CLUSTERDOWN. */
  'redis-redirected': [{ transactions: number }];
  /** Enough replicas confirmed a write. */
  'replicas-confirmed': [{ replicas: number; required: number }];
  /**
   * This process became the slot's active consumer, or a standby waiting for `activeConsumer` (another
   * process holding the slot) to go away.
   */
  role: [{ role: 'active' | 'standby'; activeConsumer: string | undefined }];
  /** Redis's eviction policy and evicted keys, read every 10 s (any policy but noeviction can lose job keys). */
  'redis-eviction': [{ policy: string; evictedKeys: number }];
  /** The consumer stopped for good on an error retrying cannot cure; `message` says what to fix. */
  'permanent-error': [{ message: string }];
  /**
   * The distribution service (--distribution URL) failed as a whole since `since` (every request since then:
   * timeouts, statuses other than 200, lost connections, bodies that are not results), `reason` the first
   * failure's; its batches are retried and hold their acknowledgement. Then `available: true` once it answers.
   */
  'distribution-availability': [{ available: false; since: Date; reason: string } | { available: true }];
  /** A request to the distribution service ended: answered as a whole (`ok`), or failed (sent again later). */
  'distribution-request': [{ jobs: number; durationMs: number; ok: boolean }];
  /** A transaction PostgreSQL streamed while it ran (protocol 2) committed and was replayed: `changes` spooled. */
  'stream-committed': [{ changes: number }];
  /** Reading from PostgreSQL paused (true) or resumed (false) because Redis writes were behind. */
  backpressure: [{ paused: boolean }];
}

export type ConsumerEvents = EventEmitter<ConsumerEventMap>;

export function makeConsumerEvents(): ConsumerEvents {
  return new EventEmitter<ConsumerEventMap>();
}
