import { describe, expect, it } from 'vitest';
import { summarizeSlotCheckpoints } from '../../src/sink/cluster-checkpoints.js';
import { ClusterSlotMap } from '../../src/sink/cluster-slot-map.js';
import { HASH_SLOTS } from '../../src/sink/hash-slot.js';

// What a session starts from on a cluster: all slots' checkpoints read together. A slot without one means
// lost state; the acknowledged position is the least of each master's newest, so that one master that went
// back is seen even when the others are ahead.

function threeMasters(): ClusterSlotMap {
  const map = new ClusterSlotMap();
  map.update(
    [
      [0, 5460, ['10.0.0.1', 7000, 'a']],
      [5461, 10922, ['', 7001, 'b']],
      [10923, 16383, ['10.0.0.3', 7002, 'c']],
    ],
    '10.0.0.2:7001',
  );
  return map;
}

describe('summarizeSlotCheckpoints', () => {
  it('reads the slot map, an unnamed host being the one that answered', () => {
    const map = threeMasters();
    expect(map.ownerOf(0)).toBe('10.0.0.1:7000');
    expect(map.ownerOf(5461)).toBe('10.0.0.2:7001');
    expect(map.ownerOf(16383)).toBe('10.0.0.3:7002');
    expect([...map.firstSlots()]).toEqual([
      ['10.0.0.1:7000', 0],
      ['10.0.0.2:7001', 5461],
      ['10.0.0.3:7002', 10923],
    ]);
  });

  it('starts from the oldest slot, checks slot by slot up to the newest, and takes the least of the masters acknowledgements', () => {
    const texts = new Array<string>(HASH_SLOTS).fill('0/100#-1 ack=0/100 writer=a');
    texts[1] = '0/300#4 ack=0/250 writer=b'; // master 1's newest
    texts[6000] = '0/280#0 ack=0/280 writer=b'; // master 2's newest
    texts[12000] = '0/200#2 ack=0/200 writer=b'; // master 3's newest: the least
    const summary = summarizeSlotCheckpoints(texts, threeMasters())!;
    expect(summary.stored.checkpoint).toEqual({ commitLsn: 0x100n, index: -1, ackLsn: 0x200n, writer: undefined });
    expect(summary.stored.text).toBe('0/100#-1 ack=0/200');
    expect(summary.stored.replayThrough).toEqual({ commitLsn: 0x300n, index: 4 });
    expect(summary.slotCheckpoints[6000]!.commitLsn).toBe(0x280n);
  });

  it('has nothing to check slot by slot when every slot holds the same checkpoint', () => {
    const summary = summarizeSlotCheckpoints(new Array<string>(HASH_SLOTS).fill('0/100#-1 ack=0/100'), threeMasters())!;
    expect(summary.stored.replayThrough).toBeUndefined();
  });

  it('is undefined when any slot lacks its checkpoint: a master lost its data, or a rebuild was asked for', () => {
    const texts: Array<string | null> = new Array<string | null>(HASH_SLOTS).fill('0/100#-1 ack=0/100');
    texts[9000] = null;
    expect(summarizeSlotCheckpoints(texts, threeMasters())).toBeUndefined();
  });
});
