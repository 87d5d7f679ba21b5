import { describe, expect, it } from 'vitest';
import { SlottedWriteBatch } from '../../src/sink/cluster-write-batch.js';
import { hashSlot } from '../../src/sink/hash-slot.js';
import { SlotPlan } from '../../src/sink/slot-plan.js';

// The plan must give each slot exactly its commands, in batch order, byte for byte: a slot's transaction with a
// command of another slot is refused (CROSSSLOT), and one in the wrong order writes an older value last.

describe('SlotPlan', () => {
  it("groups a batch's commands by slot, each slot's in order, and copies exactly their bytes", () => {
    const batch = new SlottedWriteBatch('budget-cdc:dead-letters:s', [], 256);
    const keys = ['job:{a}1', 'job:b', 'job:{a}2', 'job:c', 'job:{a}3', 'job:b'];
    keys.forEach((key, i) => batch.set(key, `{"n":${i}}`, 1_900_000_000_000));
    const plan = new SlotPlan(batch);
    expect(plan.slots).toEqual([...new Set(keys.map((key) => hashSlot(key)))]);
    const text = (slot: number): string => {
      const out = Buffer.alloc(plan.byteLength(slot));
      expect(plan.copy(slot, batch.bytes, out, 0)).toBe(out.length);
      return out.toString();
    };
    const a = text(hashSlot('a'));
    expect(plan.commandCount(hashSlot('a'))).toBe(3);
    expect([...a.matchAll(/"n":(\d)/g)].map((match) => match[1])).toEqual(['0', '2', '4']);
    expect(plan.commandCount(hashSlot('job:b'))).toBe(2);
    expect([...text(hashSlot('job:b')).matchAll(/"n":(\d)/g)].map((match) => match[1])).toEqual(['1', '5']);
    expect(plan.slots.reduce((sum, slot) => sum + plan.byteLength(slot), 0)).toBe(batch.length);
    expect(plan.commandCount(hashSlot('job:unused'))).toBe(0);
  });

  it('is empty for an empty batch, and a second plan is not disturbed by the first', () => {
    expect(SlotPlan.EMPTY.slots).toEqual([]);
    const batch = new SlottedWriteBatch('budget-cdc:dead-letters:s', [], 256);
    batch.del('job:x');
    batch.del('job:x');
    const first = new SlotPlan(batch);
    const second = new SlotPlan(batch);
    expect(second.commandCount(hashSlot('job:x'))).toBe(2);
    expect(second.byteLength(hashSlot('job:x'))).toBe(first.byteLength(hashSlot('job:x')));
  });
});
