import type { BatchReply } from './batch-writer.js';
import type { Checkpoint } from './checkpoint.js';
import type { RebuildCause, RebuildRequest } from './rebuild-record.js';
import type { WriteBatch } from './write-batch.js';

// What the consumer needs of the store it feeds. RedisSink is the single-Redis implementation; a Redis
// Cluster sink would be another, with the same promises: a batch and the checkpoint that covers it are
// applied together or not at all, and every reply is checked.

export interface Sink {
  readonly keyPrefix: string;
  /** A new, empty batch. */
  newBatch(): WriteBatch;
  /**
   * Applies a batch with the checkpoint that covers it, all or nothing; with `waitForReplicas`, then waits for
   * the replicas --redis-min-replicas asks for. Resolves with the checkpoint it replaced; rejects on any error.
   */
  write(batch: WriteBatch, checkpointText: string, waitForReplicas: boolean): Promise<BatchReply>;
  /** Asks the replicas again; resolves with how many confirmed everything written so far. */
  waitForReplicas(minReplicas: number): Promise<number>;
  /** Applies a batch with no checkpoint (a resync, before its checkpoint exists). */
  writeWithoutCheckpoint(batch: WriteBatch): Promise<void>;
  /** Sets the checkpoint after a resync; returns its text. */
  createCheckpoint(checkpoint: Checkpoint): Promise<string>;
  /** The checkpoint with its exact text, or undefined when there is none. */
  readCheckpoint(): Promise<{ checkpoint: Checkpoint; text: string } | undefined>;
  readCheckpointText(): Promise<string | null>;
  /** Stores why a rebuild is needed and removes the checkpoint, together. */
  requestRebuild(request: RebuildRequest): Promise<void>;
  readRebuildRequest(): Promise<RebuildRequest | undefined>;
  /** Counts a finished rebuild by cause and clears the request. */
  recordRebuild(cause: RebuildCause, detail: string): Promise<void>;
  writeResyncProgress(progress: { totalRows: number; rowsDone: number }): Promise<void>;
  /** Deletes every job key (TRUNCATE); returns how many. */
  deleteKeysUnderPrefix(): Promise<number>;
  /** The job keys, a page at a time. */
  scanKeysUnderPrefix(): AsyncGenerator<string[]>;
  deleteKeys(keys: string[]): Promise<number>;
  /** Fences the slot's earlier writers off (see RedisSink); returns how many connections it closed. */
  closeEarlierWriters(): Promise<number>;
  /** Reconnects what gave up for good, before a new session. */
  reconnectIfEnded(): Promise<void>;
  close(): void;
}
