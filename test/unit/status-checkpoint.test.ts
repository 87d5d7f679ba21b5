import { describe, expect, it } from 'vitest';
import { describeCheckpoint } from '../../src/commands/status-text.js';

// `budget-cdc status` used to print the stored checkpoint ("0/6C41D98#-1") bare; each part now says what it is.

describe('describeCheckpoint', () => {
  it('says that #-1 means every transaction before the commit, none of it', () => {
    expect(describeCheckpoint('0/6C41D98#-1 ack=0/6C41D98 writer=4f3a9c1e')).toBe(
      'checkpoint: last change in Redis 0/6C41D98 (#-1: Redis holds every transaction committed before 0/6C41D98, none of that one)' +
        ', acknowledged to PostgreSQL up to 0/6C41D98 at most, written by consumer session 4f3a9c1e',
    );
  });

  it('says which changes of the transaction Redis holds for #N', () => {
    expect(describeCheckpoint('16/B374D848#12')).toBe(
      'checkpoint: last change in Redis 16/B374D848 (#12: Redis holds every transaction committed before 16/B374D848 and changes 0 to 12 of that one)',
    );
  });

  it('says what happens without a checkpoint', () => {
    expect(describeCheckpoint(null)).toBe('checkpoint: none (the consumer loads Redis from the table, then streams)');
  });

  it('shows a text it cannot parse (a cluster summary) as it is', () => {
    expect(describeCheckpoint('16 of 16384 slots differ')).toBe('checkpoint: 16 of 16384 slots differ');
  });
});
