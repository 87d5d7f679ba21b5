import type { Checkpoint } from './checkpoint.js';
import type { RebuildCause, RebuildHistory, RebuildRequest } from './rebuild-record.js';
import type { ReplayPosition } from './cluster-write-batch.js';
import type { WriteBatch } from './write-batch.js';

// What the consumer needs of the store it feeds. RedisSink is the single-Redis implementation, ClusterSink the
// Redis Cluster one, with the same promises: a batch's writes and the checkpoint that covers them are applied
// together or not at all (on a cluster: per hash slot), every reply is checked, and a checkpoint that vanished
// or went back is reported, never overwritten.

/** A checkpoint write that goes with a batch, as the consumer issues them, in stream order. */
export interface CheckpointWrite {
  text: string;
  /** The text a single Redis must hold just before this write; a cluster sink tracks each slot's itself. */
  expectedPrevious: string | undefined;
  /**
   * The write carries an acknowledgement: with --redis-min-replicas, WAIT follows it; on a cluster, every
   * master gets the checkpoint, so that each one's data shows how far it was acknowledged.
   */
  waitForReplicas: boolean;
  /** A TRUNCATE's checkpoint: on a cluster, every slot's checkpoint moves to it. */
  everySlot: boolean;
}

/** What a checkpoint found in Redis says: it vanished (Redis lost its state), or it is not the one written last. */
export type CheckpointProblem = { kind: 'lost' } | { kind: 'went-back'; expected: string | undefined; found: string };

/** What a batch's write found: a problem with the checkpoint, and how many replicas confirmed it (WAIT). */
export interface WriteOutcome {
  problem: CheckpointProblem | undefined;
  /** Replicas that confirmed within the WAIT timeout (on a cluster, the fewest of any master); undefined without WAIT. */
  replicas: number | undefined;
  /** On a cluster, slot transactions sent again after MOVED, ASK, TRYAGAIN or CLUSTERDOWN; 0 on one Redis. */
  redirects: number;
}

/** The checkpoint a sink read, with the text to show. */
export interface StoredCheckpoint {
  /** Every change at or before this position is in Redis (on a cluster: in every slot). */
  checkpoint: Checkpoint;
  text: string;
  /**
   * On a cluster, the newest position some slot holds, when it is beyond `checkpoint`: up to it, a replayed
   * change must be checked against its own slot's checkpoint (see SlottedWriteBatch).
   */
  replayThrough: ReplayPosition | undefined;
}

export interface Sink {
  readonly keyPrefix: string;
  /** The consumer sends a batch once its RESP reaches this many bytes (or --batch-size commands). */
  readonly batchBytes: number;
  /** Batches queued or in flight before the consumer stops reading from PostgreSQL (backpressure). */
  readonly maxQueuedBatches: number;
  /** A new, empty batch. */
  newBatch(): WriteBatch;
  /**
   * Applies a batch with the checkpoint that covers it, all or nothing; with `waitForReplicas`, then waits for
   * the replicas --redis-min-replicas asks for. Resolves with what it found of the checkpoint it replaced;
   * rejects on any error.
   */
  write(batch: WriteBatch, checkpoint: CheckpointWrite): Promise<WriteOutcome>;
  /** Asks the replicas again; resolves with how many confirmed everything written so far. */
  waitForReplicas(minReplicas: number): Promise<number>;
  /** Applies a batch with no checkpoint (a resync, before its checkpoint exists). */
  writeWithoutCheckpoint(batch: WriteBatch): Promise<void>;
  /** Sets the checkpoint after a resync; returns its text. */
  createCheckpoint(checkpoint: Checkpoint): Promise<string>;
  /** The checkpoint, or undefined when there is none (on a cluster: when any slot lacks its own). */
  readCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Reads the checkpoint again, expecting the text written last (`expected`); undefined when Redis holds it. */
  checkCheckpoint(expected: string | undefined): Promise<CheckpointProblem | undefined>;
  /** Stores why a rebuild is needed and removes the checkpoint, together. */
  requestRebuild(request: RebuildRequest): Promise<void>;
  readRebuildRequest(): Promise<RebuildRequest | undefined>;
  /** Counts a finished rebuild by cause and clears the request. */
  recordRebuild(cause: RebuildCause, detail: string, distribution: string): Promise<void>;
  /** Rebuilds by cause, the last one, and the budget rule it used (what a session compares its own with). */
  readRebuildHistory(): Promise<RebuildHistory>;
  writeResyncProgress(progress: { totalRows: number; rowsDone: number }): Promise<void>;
  /** Empties the dead letters, before a rebuild sets aside again the rows it cannot process. */
  resetDeadLetters(): Promise<void>;
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
