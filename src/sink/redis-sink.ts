import type { Redis } from 'ioredis';
import { BatchWriter, type WriterSettings } from './batch-writer.js';
import type { Checkpoint } from './checkpoint.js';
import { RedisStore } from './redis-store.js';
import { StoreBackedSink } from './store-backed-sink.js';
import { connectionSettingsOf } from './redis-target.js';
import type { CheckpointProblem, CheckpointWrite, Sink, StoredCheckpoint, WriteOutcome } from './sink.js';
import { WriteBatch } from './write-batch.js';

/**
 * The Sink on one Redis (or a master behind Sentinels): batches through the BatchWriter's connection, the
 * rest through RedisStore (ioredis). Callers order the two: a TRUNCATE's scan starts only after every
 * earlier batch is confirmed. Nothing here acknowledges anything to PostgreSQL.
 */
export class RedisSink extends StoreBackedSink implements Sink {
  /** 1 MiB: enough to amortize a round trip, small enough that memory stays flat whatever the values. */
  readonly batchBytes = 1 << 20;
  /** Pipelined on the writer connection: Redis works on one while the next ones are on the way. */
  readonly maxQueuedBatches = 4;
  private readonly writer: BatchWriter;

  constructor(redis: Redis, keyPrefix: string, slotName: string, writerSettings: Omit<WriterSettings, 'connection'>) {
    super(new RedisStore(redis, keyPrefix, slotName));
    // Client names take no spaces; slot names are plain SQL names.
    this.writer = new BatchWriter(
      { ...writerSettings, connection: connectionSettingsOf(redis.options) },
      this.store.checkpointKey,
      `budget-cdc-writer-${slotName}`,
    );
  }

  newBatch(): WriteBatch {
    return new WriteBatch(this.store.deadLetterKey);
  }

  async write(batch: WriteBatch, checkpoint: CheckpointWrite): Promise<WriteOutcome> {
    const reply = await this.writer.write(batch, checkpoint.text, checkpoint.waitForReplicas);
    return { problem: checkpointProblem(checkpoint.expectedPrevious, reply.previous), replicas: reply.replicas, redirects: 0 };
  }

  waitForReplicas(minReplicas: number): Promise<number> {
    return this.writer.waitForReplicas(minReplicas);
  }

  writeWithoutCheckpoint(batch: WriteBatch): Promise<void> {
    return this.writer.writeWithoutCheckpoint(batch);
  }

  createCheckpoint(checkpoint: Checkpoint): Promise<string> {
    return this.store.createCheckpoint(checkpoint);
  }

  async readCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const stored = await this.store.readCheckpoint();
    return stored === undefined ? undefined : { ...stored, replayThrough: undefined };
  }

  async checkCheckpoint(expected: string | undefined): Promise<CheckpointProblem | undefined> {
    return checkpointProblem(expected, await this.store.readCheckpointText());
  }

  /**
   * Closes the batch writer connections of earlier owners of the slot (CLIENT KILL), this process's own
   * included: a process killed with batches still in Redis's socket buffer would otherwise have them
   * applied after its successor read the checkpoint, an older write over a newer one. Returns how many it
   * closed. Needs CLIENT LIST and CLIENT KILL (the @admin category); without them it throws NOPERM.
   */
  closeEarlierWriters(): Promise<number> {
    this.writer.close();
    return this.store.closeConnectionsNamed(this.writer.writerName);
  }

  close(): void {
    this.writer.close();
  }
}

/** Redis held `found` where `expected` was written last: nothing (it lost its state), another text (it went back). */
export function checkpointProblem(expected: string | undefined, found: string | null): CheckpointProblem | undefined {
  if (found === null) return { kind: 'lost' };
  return found === expected ? undefined : { kind: 'went-back', expected, found };
}
