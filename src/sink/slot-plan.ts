import { HASH_SLOTS } from './hash-slot.js';

// A cluster batch's commands grouped by hash slot, in typed arrays: a batch touches thousands of slots, and an
// object, an array and a map entry per slot per batch showed up as garbage collection in the consumer's profile.

/** Where a batch's commands are: each one's first byte and slot, in order (SlottedWriteBatch). */
export interface SlottedCommands {
  readonly starts: readonly number[];
  readonly slots: readonly number[];
  /** Bytes used: the end of the last command. */
  readonly length: number;
}

/** Scratch space of the sort, zeroed again after each use (plans are made one at a time). */
const FILLED = new Int32Array(HASH_SLOTS);

export class SlotPlan {
  /** The slots that have commands, each once, in the order first met. */
  readonly slots: number[] = [];
  /** Per slot: how many commands, and where its run starts in `order`. */
  private readonly counts = new Int32Array(HASH_SLOTS);
  private readonly firsts = new Int32Array(HASH_SLOTS);
  /** Command indices, grouped by slot, each slot's in batch order. */
  private readonly order: Int32Array;

  constructor(private readonly commands: SlottedCommands) {
    const { slots } = commands;
    for (const slot of slots) if (this.counts[slot]!++ === 0) this.slots.push(slot);
    let next = 0;
    for (const slot of this.slots) {
      this.firsts[slot] = next;
      next += this.counts[slot]!;
    }
    // A counting sort: each slot's commands keep their order.
    this.order = new Int32Array(slots.length);
    const filled = FILLED;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      this.order[this.firsts[slot]! + filled[slot]!++] = i;
    }
    for (const slot of this.slots) filled[slot] = 0;
  }

  /** An empty plan: checkpoints alone. */
  static readonly EMPTY = new SlotPlan({ starts: [], slots: [], length: 0 });

  commandCount(slot: number): number {
    return this.counts[slot]!;
  }

  /** The bytes of `slot`'s commands. */
  byteLength(slot: number): number {
    let bytes = 0;
    for (let k = this.firsts[slot]!, end = k + this.counts[slot]!; k < end; k++)
      bytes += this.commandEnd(this.order[k]!) - this.commands.starts[this.order[k]!]!;
    return bytes;
  }

  /** Copies `slot`'s commands from `source` (the batch's bytes) into `out` at `at`; returns where they end. */
  copy(slot: number, source: Buffer, out: Buffer, at: number): number {
    let end = at;
    for (let k = this.firsts[slot]!, last = k + this.counts[slot]!; k < last; k++) {
      const command = this.order[k]!;
      end += source.copy(out, end, this.commands.starts[command], this.commandEnd(command));
    }
    return end;
  }

  private commandEnd(command: number): number {
    return command + 1 < this.commands.starts.length ? this.commands.starts[command + 1]! : this.commands.length;
  }
}
