import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decimalDigits, writeDecimal, writePadded } from '../../src/sink/ascii-bytes.js';

// The writers of numbers into batch buffers must give exactly what String() gives: every SET's lengths and
// expiries are written with them.

/** Safe integers, with every power of ten and its neighbours (where a digit count changes) drawn often. */
const safeInteger = fc.oneof(
  fc.integer({ min: 0, max: 99 }),
  fc.maxSafeNat(),
  fc
    .integer({ min: 0, max: 15 })
    .chain((power) => fc.constantFrom(10 ** power - 1, 10 ** power, 10 ** power + 1).filter((value) => value >= 0)),
);

describe('ascii-bytes', () => {
  it('counts and writes any safe integer as String() does', () => {
    fc.assert(
      fc.property(safeInteger, (value) => {
        expect(decimalDigits(value)).toBe(String(value).length);
        const target = Buffer.alloc(20, 0x2a);
        const end = writeDecimal(target, 2, value);
        expect(target.toString('latin1', 2, end)).toBe(String(value));
        expect(target.toString('latin1', 0, 2) + target.toString('latin1', end)).toBe('*'.repeat(20 - (end - 2)));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes an integer padded with zeros to its width, odd and even widths alike', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 15 }), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (width, fraction) => {
        const value = Math.floor(fraction * 10 ** width);
        const target = Buffer.alloc(width);
        expect(writePadded(target, 0, value, width)).toBe(width);
        expect(target.toString('latin1')).toBe(String(value).padStart(width, '0'));
      }),
      { numRuns: 2000 },
    );
  });
});
