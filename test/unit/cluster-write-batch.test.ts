import { describe, expect, it } from 'vitest';
import { parseCheckpoint, type Checkpoint } from '../../src/sink/checkpoint.js';
import { SlottedWriteBatch } from '../../src/sink/cluster-write-batch.js';
import { hashSlot, HASH_SLOTS } from '../../src/sink/hash-slot.js';

// The cluster batch must find each command's key and slot in its RESP exactly, whatever the command, or a
// slot's transaction would carry another slot's write (CROSSSLOT) or miss one; and its replay filter must drop
// exactly the changes a slot's checkpoint covers.

const JOB = { budgetCents: 1000, daysOnline: 2, createdAtMs: Date.UTC(2030, 0, 1), expiresAtMs: Date.UTC(2030, 0, 3) };
const PREFIX = Buffer.from('job:');

function commandsOf(batch: SlottedWriteBatch): string[] {
  // Offsets are in bytes: a multibyte key must not shift them.
  const bytes = batch.bytes;
  return batch.starts.map((start, i) => bytes.toString('utf8', start, i + 1 < batch.starts.length ? batch.starts[i + 1] : bytes.length));
}

describe('SlottedWriteBatch', () => {
  it('records where each command starts and the hash slot of its key, for every kind of command', () => {
    const batch = new SlottedWriteBatch('budget-cdc:dead-letters:s', [], 1024);
    const source = Buffer.from('xx12345yy');
    batch.setJob(PREFIX, source, 2, 7, JOB);
    batch.set('job:{tag}é', '{"v":1}', JOB.expiresAtMs);
    batch.del('job:gone');
    batch.deadLetter('{"job_id":null}');
    expect(batch.commands).toBe(5);
    expect(batch.slots).toEqual([
      hashSlot('job:12345'),
      hashSlot('tag'),
      hashSlot('job:gone'),
      hashSlot('budget-cdc:dead-letters:s'),
      hashSlot('budget-cdc:dead-letters:s'),
    ]);
    const commands = commandsOf(batch);
    expect(commands[0]).toMatch(/^\*5\r\n\$3\r\nSET\r\n\$9\r\njob:12345\r\n/);
    expect(commands[1]).toMatch(/^\*5\r\n\$3\r\nSET\r\n\$\d+\r\njob:\{tag\}é\r\n/);
    expect(commands[2]).toBe('*2\r\n$3\r\nDEL\r\n$8\r\njob:gone\r\n');
    expect(commands[3]).toMatch(/^\*3\r\n\$5\r\nLPUSH\r\n/);
    expect(commands[4]).toMatch(/^\*4\r\n\$5\r\nLTRIM\r\n/);
    expect(commands.join('')).toBe(batch.bytes.toString());
  });

  it('drops a replayed change whose slot checkpoint covers it, and keeps it where the slot is behind', () => {
    const covered = hashSlot('job:covered');
    const behind = hashSlot('job:behind');
    const checkpoints: Array<Checkpoint | undefined> = new Array<Checkpoint | undefined>(HASH_SLOTS).fill(undefined);
    checkpoints[covered] = parseCheckpoint('0/200#5 ack=0/100');
    checkpoints[behind] = parseCheckpoint('0/100#-1 ack=0/100');
    const batch = new SlottedWriteBatch('budget-cdc:dead-letters:s', checkpoints, 1024);
    batch.del('job:first');
    batch.replayPosition = { commitLsn: 0x200n, index: 3 };
    batch.set('job:covered', '{}', JOB.expiresAtMs);
    batch.set('job:behind', '{}', JOB.expiresAtMs);
    batch.replayPosition = { commitLsn: 0x200n, index: 6 };
    batch.del('job:covered');
    batch.replayPosition = undefined;
    batch.set('job:covered', '{"after":1}', JOB.expiresAtMs);
    const commands = commandsOf(batch);
    expect(batch.commands).toBe(4);
    expect(commands.map((command) => command.split('\r\n')[4])).toEqual(['job:first', 'job:behind', 'job:covered', 'job:covered']);
    expect(commands[2]).toMatch(/^\*2\r\n\$3\r\nDEL/);
    expect(batch.slots).toEqual([hashSlot('job:first'), behind, covered, covered]);
    expect(commands.join('')).toBe(batch.bytes.toString());
  });
});
