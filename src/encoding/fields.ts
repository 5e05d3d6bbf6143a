// The fields every on-disk encoding is built from: little-endian 64-bit integers (below 2^53), CRC32C
// checksums, four-character tags, and sequence numbers in file names.
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { assert, RewindError } from '../errors.js';

export function putU64(buf: Buffer, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `a 64-bit field holds an integer in [0, 2^53), not ${value}`);
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

export function getU64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32LE(offset + 4);
  if (hi >= 0x20_0000) throw new RewindError('CORRUPT', `64-bit field at byte ${offset} of a record holds a value above 2^53`);
  return hi * 0x1_0000_0000 + buf.readUInt32LE(offset);
}

/** CRC-32C (Castagnoli) of a byte range, chainable through `seed`. */
export function crc32c(data: Uint8Array, seed = 0): number {
  return nativeCrc32c(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), seed) >>> 0;
}

/** Four ASCII characters as a little-endian u32, so a hex dump shows the tag. */
export function tag(text: string): number {
  return Buffer.from(text, 'ascii').readUInt32LE(0);
}

/** A fixed-width decimal file name component that sorts like the number. */
export const seqName = (seq: number) => String(seq).padStart(16, '0');
