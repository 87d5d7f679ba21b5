import { describe, expect, it } from 'vitest';
import { hashSlot, HASH_SLOTS } from '../../src/sink/hash-slot.js';

// Expected slots are what redis-server 7.0 answered to CLUSTER KEYSLOT for each key, including the hash-tag
// edge cases: an empty tag, a tag not closed, braces in braces, a "}" before the "{".
const KEYSLOT_ANSWERS: Array<[string, number]> = [
  ['foo', 12182],
  ['bar', 5061],
  ['somekey', 11058],
  ['foo{hash_tag}', 2515],
  ['{}x', 10595],
  ['{x}', 16287],
  ['job:{x}1', 16287],
  ['a{}{b}', 15033],
  ['{{a}}', 10276],
  ['job:}{a}', 15495],
  ['', 0],
  ['job:é', 13349],
  ['job:\u{1F600}', 12448],
];

describe('hashSlot', () => {
  it.each(KEYSLOT_ANSWERS)('%j is in slot %i, as CLUSTER KEYSLOT says', (key, slot) => {
    expect(hashSlot(key)).toBe(slot);
    expect(hashSlot(Buffer.from(key))).toBe(slot);
  });

  it('hashes only the tag when there is one, and always lands in 0..16383', () => {
    expect(hashSlot('job:{tenant-7}:a')).toBe(hashSlot('tenant-7'));
    expect(hashSlot('job:{tenant-7}:b')).toBe(hashSlot('job:{tenant-7}:a'));
    for (const key of ['job:é', 'job:\u{1F600}', 'x'.repeat(10_000)]) {
      const slot = hashSlot(key);
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(slot).toBeLessThan(HASH_SLOTS);
    }
  });
});
