// Writers of ASCII text straight into a Buffer at a position, returning the position after it. The hot
// path builds each Redis command with these instead of concatenating strings: no garbage per row, and
// no second pass to encode the text.

const DIGIT_0 = 0x30;

/** A constant of the protocol or the value format, encoded once; write it with writeConstant. */
export function asciiConstant(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.some((byte) => byte > 0x7f) || bytes.length !== Buffer.byteLength(text)) throw new Error(`not ASCII: ${JSON.stringify(text)}`);
  return bytes;
}

/** Writes a constant made by asciiConstant (TypedArray#set: faster than a loop over a string's characters). */
export function writeConstant(target: Buffer, at: number, constant: Buffer): number {
  target.set(constant, at);
  return at + constant.length;
}

/** Writes "\r\n", the end of every RESP line. */
export function writeCrlf(target: Buffer, at: number): number {
  target[at] = 0x0d;
  target[at + 1] = 0x0a;
  return at + 2;
}

/** Copies `source[start, end)`; a loop beats Buffer#copy's native call for the short runs written here. */
export function writeBytes(target: Buffer, at: number, source: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) target[at++] = source[i]!;
  return at;
}

/** How many decimal digits a non-negative safe integer (at most 16 digits) has. */
export function decimalDigits(value: number): number {
  // A few comparisons rather than a division per digit: this runs for every number of every command.
  let digits = 1;
  if (value >= 1e8) {
    digits += 8;
    value = Math.floor(value / 1e8);
  }
  if (value >= 1e4) {
    digits += 4;
    value = Math.floor(value / 1e4);
  }
  if (value >= 100) {
    digits += 2;
    value = Math.floor(value / 100);
  }
  return value >= 10 ? digits + 1 : digits;
}

/** Writes a non-negative safe integer in decimal. */
export function writeDecimal(target: Buffer, at: number, value: number): number {
  return writePadded(target, at, value, decimalDigits(value));
}

/** "00" to "99", two bytes each: writeTwoDigits copies from it instead of dividing. */
const TWO_DIGITS = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''), 'latin1');

/** Writes a non-negative integer below 10^width in exactly `width` digits, zeros first. */
export function writePadded(target: Buffer, at: number, value: number, width: number): number {
  // Two digits per division, from the table.
  let i = at + width;
  while (i - at >= 2) {
    const next = Math.floor(value / 100);
    const pair = 2 * (value - next * 100);
    target[--i] = TWO_DIGITS[pair + 1]!;
    target[--i] = TWO_DIGITS[pair]!;
    value = next;
  }
  if (i > at) target[at] = DIGIT_0 + value;
  return at + width;
}

/** Writes an integer 0-99 as two digits, zero first. */
export function writeTwoDigits(target: Buffer, at: number, value: number): number {
  target[at] = TWO_DIGITS[2 * value]!;
  target[at + 1] = TWO_DIGITS[2 * value + 1]!;
  return at + 2;
}
