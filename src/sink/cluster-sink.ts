import type { Cluster } from 'ioredis';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { SlottedWriteBatch } from './cluster-write-batch.js';
import { checkpointHead, ClusterWriter, type AppliedSlots } from './cluster-writer.js';
import { HASH_SLOTS } from './hash-slot.js';
import { slotCheckpointKey } from './internal-keys.js';
import { RedisStore } from './redis-store.js';
import { StoreBackedSink } from './store-backed-sink.js';
import { connectionSettingsOf } from './redis-target.js';
import type { CheckpointProblem, CheckpointWrite, Sink, StoredCheckpoint, WriteOutcome } from './sink.js';
import { SlotPlan } from './slot-plan.js';
import type { WriteBatch } from './write-batch.js';

const EMPTY = Buffer.alloc(0);

/** Slot checkpoints an idle check reads besides each master's acknowledging one: all 16,384 in 16 checks. */
const CHECKED_SLOTS = 1_024;

/** Where the cluster sink writes, and what it asks of replicas. */
export interface ClusterSinkSettings {
  /** The cluster nodes given (REDIS_CLUSTER_NODES), "host:port". */
  seeds: readonly string[];
  /** After each acknowledging batch, WAIT for this many replicas on every master (0: no WAIT). */
  minReplicas: number;
  waitTimeoutMs: number;
}

/**
 * The Sink on a Redis Cluster: a checkpoint per hash slot. Each batch is split by slot; each slot's writes go
 * in one MULTI/EXEC with that slot's checkpoint (`SET … XX GET`, as on a single Redis), so every slot holds its
 * writes and the checkpoint that covers them, or neither, and a crash between two slots' transactions leaves
 * each slot exact: a replay skips, per slot, what that slot holds (SlottedWriteBatch).
 *
 * Rollback detection, as on a single Redis, slot by slot: each slot's checkpoint must be the one this session
 * wrote there last (else it lost its state or went back in time). Every write that carries an acknowledgement
 * then moves one slot's checkpoint on every master, once the batch's other writes are applied, so a master that
 * lost an acknowledged write (a failover to a replica that missed it) holds no checkpoint that new: the start of a
 * session compares that with the slot's confirmed position (summarizeSlotCheckpoints).
 *
 * Batches are applied one after another: a slot's transaction that is redirected (MOVED, ASK, TRYAGAIN) is
 * sent again before the next batch's, so a slot never gets an older checkpoint after a newer one.
 */
export class ClusterSink extends StoreBackedSink implements Sink {
  /**
   * 16 MiB: a batch costs a transaction per hash slot it touches, and a larger one shares each slot's among more
   * rows (bench/measure-cluster-designs.ts; with --batch-size, which defaults to 60,000 on a cluster). Measured end
   * to end, 1M rows into 3 masters: 4 MiB batches 0.67x the single Redis's rate, 16 MiB 0.75x.
   */
  readonly batchBytes = 16 << 20;
  /**
   * Batches are applied one after another (see write), so more waiting would only hold memory: one in flight and
   * one ready, while the consumer builds the next.
   */
  readonly maxQueuedBatches = 2;
  private readonly writer: ClusterWriter;
  /** The checkpoint text each slot must hold: the one read at the session's start, or written since. */
  private readonly slotTexts: Array<string | null> = new Array<string | null>(HASH_SLOTS).fill(null);
  /**
   * Each slot's checkpoint at the session's start: a replayed change its slot holds is skipped. Filled in
   * place: the batches made before the session read it hold this array.
   */
  private readonly slotCheckpoints: Array<Checkpoint | undefined> = new Array<Checkpoint | undefined>(HASH_SLOTS).fill(undefined);
  /** The last write, which the next waits for. */
  private lastWrite: Promise<unknown> = Promise.resolve();
  /** Where the next idle check goes on reading (see checkCheckpoint). */
  private nextCheckedSlot = 0;
  /** Each slot's `SET <checkpoint key>` in RESP, made once. */
  private readonly checkpointHeads: Buffer[] = [];
  /** Slot transactions sent again after a redirection, since the process started. */
  private redirects = 0;

  constructor(
    cluster: Cluster,
    keyPrefix: string,
    slotName: string,
    private readonly settings: ClusterSinkSettings,
  ) {
    super(new RedisStore(cluster, keyPrefix, slotName));
    this.writer = new ClusterWriter(
      { seeds: settings.seeds, connection: connectionSettingsOf(cluster.options.redisOptions ?? {}) },
      `budget-cdc-writer-${slotName}`,
    );
  }

  newBatch(): WriteBatch {
    // Room for the last row past batchBytes (a 3650-day job is 36 kB) without growing the buffer.
    return new SlottedWriteBatch(this.store.deadLetterKey, this.slotCheckpoints, this.batchBytes + (256 << 10));
  }

  write(batch: WriteBatch, checkpoint: CheckpointWrite): Promise<WriteOutcome> {
    const write = this.lastWrite.then(() => this.writeNow(batch as SlottedWriteBatch, checkpoint));
    this.lastWrite = write;
    return write;
  }

  private async writeNow(batch: SlottedWriteBatch, checkpoint: CheckpointWrite): Promise<WriteOutcome> {
    const slotMap = await this.writer.ensureSlotMap();
    const plan = new SlotPlan(batch);
    const slots = checkpoint.everySlot ? Array.from({ length: HASH_SLOTS }, (_, slot) => slot) : plan.slots;
    const slotCheckpoint = {
      text: checkpoint.text,
      headOf: (slot: number) => (this.checkpointHeads[slot] ??= checkpointHead(slotCheckpointKey(this.keyPrefix, slot))),
    };
    const nodes = new Set<string>();
    const redirectsBefore = this.redirects;
    let problem: CheckpointProblem | undefined;
    try {
      problem = this.check(await this.writer.apply(batch.bytes, plan, slots, slotCheckpoint), checkpoint.text, nodes);
    } finally {
      batch.release();
    }
    if (checkpoint.waitForReplicas) {
      // Once everything else is applied, a checkpoint on every master: written after the rest on each master's
      // connection, it reaches a replica only after the rest did, so a master holding it lost nothing of the batch.
      const markers = [...slotMap.firstSlots().values()];
      problem ??= this.check(await this.writer.apply(EMPTY, SlotPlan.EMPTY, markers, slotCheckpoint), checkpoint.text, nodes);
    }
    const { minReplicas, waitTimeoutMs } = this.settings;
    const replicas =
      checkpoint.waitForReplicas && minReplicas > 0 ? await this.writer.waitForReplicas(nodes, minReplicas, waitTimeoutMs) : undefined;
    return { problem, replicas, redirects: this.redirects - redirectsBefore };
  }

  /** Each applied slot must have held the text this session wrote there last; it now holds `text`. */
  private check(applied: AppliedSlots, text: string, nodes: Set<string>): CheckpointProblem | undefined {
    this.redirects += applied.redirects;
    for (const node of applied.nodes) nodes.add(node);
    let problem: CheckpointProblem | undefined;
    for (let i = 0; i < applied.slots.length; i++) {
      const slot = applied.slots[i]!;
      const previous = applied.previous[i]!;
      const expected = this.slotTexts[slot]!;
      if (previous === null) problem = { kind: 'lost' };
      else if (previous !== expected && problem === undefined)
        problem = { kind: 'went-back', expected: `${expected} (hash slot ${slot})`, found: previous };
      this.slotTexts[slot] = text;
    }
    return problem;
  }

  async waitForReplicas(minReplicas: number): Promise<number> {
    const slotMap = await this.writer.ensureSlotMap();
    return this.writer.waitForReplicas(slotMap.masters, minReplicas, this.settings.waitTimeoutMs);
  }

  writeWithoutCheckpoint(batch: WriteBatch): Promise<void> {
    const write = this.lastWrite.then(async () => {
      try {
        const plan = new SlotPlan(batch as SlottedWriteBatch);
        if (plan.slots.length > 0) this.redirects += (await this.writer.apply(batch.bytes, plan, plan.slots, undefined)).redirects;
      } finally {
        batch.release();
      }
    });
    this.lastWrite = write;
    return write;
  }

  async createCheckpoint(checkpoint: Checkpoint): Promise<string> {
    const text = await this.store.createCheckpoint(checkpoint);
    this.slotTexts.fill(text);
    this.slotCheckpoints.fill(parseCheckpoint(text));
    return text;
  }

  /** Reads every slot's checkpoint; the session starts from them (each slot must then hold what it read). */
  async readCheckpoint(): Promise<StoredCheckpoint | undefined> {
    // A new session: a failed write of the last one must not hold the next back.
    this.lastWrite = Promise.resolve();
    await this.writer.refreshSlots();
    const stored = await this.store.readCheckpoint(this.writer.slotMap);
    for (let slot = 0; slot < HASH_SLOTS; slot++) this.slotTexts[slot] = stored?.slots?.texts[slot] ?? null;
    for (let slot = 0; slot < HASH_SLOTS; slot++) this.slotCheckpoints[slot] = stored?.slots?.checkpoints[slot];
    return stored;
  }

  /**
   * The slots must still hold what this session wrote there last. Each check reads every master's acknowledging
   * slot (a master that lost its data or went back shows there first) and the next CHECKED_SLOTS slots in turn,
   * so that every slot is read within a minute without 16,384 reads a second.
   */
  async checkCheckpoint(): Promise<CheckpointProblem | undefined> {
    const slotMap = await this.writer.ensureSlotMap();
    const slots = new Set(slotMap.firstSlots().values());
    for (let i = 0; i < CHECKED_SLOTS; i++) slots.add((this.nextCheckedSlot + i) % HASH_SLOTS);
    this.nextCheckedSlot = (this.nextCheckedSlot + CHECKED_SLOTS) % HASH_SLOTS;
    const expected = [...slots].map((slot) => [slot, this.slotTexts[slot]] as const);
    const cluster = this.store.redis as Cluster;
    const found = await Promise.all(expected.map(([slot]) => cluster.get(slotCheckpointKey(this.keyPrefix, slot))));
    for (let i = 0; i < expected.length; i++) {
      const [slot, text] = expected[i]!;
      if (found[i] === null) return { kind: 'lost' };
      if (found[i] !== text) return { kind: 'went-back', expected: `${text} (hash slot ${slot})`, found: found[i]! };
    }
    return undefined;
  }

  /** As RedisSink#closeEarlierWriters, on every master: an earlier owner's writer has a connection to each. */
  closeEarlierWriters(): Promise<number> {
    this.writer.close();
    return this.store.closeConnectionsNamed(this.writer.writerName);
  }

  close(): void {
    this.writer.close();
  }
}
