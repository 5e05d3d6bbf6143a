// Decoding the old contents of a block from a pack section, for the read paths (views, restore).
// The same block encoding as src/increment/codec.ts (tokens: u32 zero bytes, u32 literal bytes,
// literal bytes, covering exactly one block), decoded faster: literals are copied with
// Buffer.copy and XORed 32 bits at a time when both sides are 4-byte aligned (they are in packs
// and in block-aligned buffers), instead of a byte at a time. The XOR form (old = new XOR delta)
// is what a pack holds for every block whose delta is not larger than the old block, so a restore
// far back spends most of its decoding time here.
import { BACKWARD_RAW, OFFSET_MASK } from '../increment/codec.js';

/** What decodeOld needs of a section (src/increment/pack.ts PackSection has these public fields). */
export interface SectionBody {
  readonly body: Buffer;
  readonly blocks: readonly number[];
  readonly fwdBytes: number;
}

/**
 * Writes the contents block `i` of the section had before its window into `dst[dstOffset, +blockSize)`.
 * Returns false for a malformed encoding.
 */
export function decodeOld(s: SectionBody, i: number, dst: Uint8Array, dstOffset: number, blockSize: number): boolean {
  const body = s.body;
  const n = s.blocks.length;
  if (i < 0 || i >= n) return false;
  const fwdTable = 8 * n;
  const bwdTable = fwdTable + 4 * (n + 1);
  const fwdData = bwdTable + 4 * (n + 1);
  const bwdData = fwdData + s.fwdBytes;
  const b0 = body.readUInt32LE(bwdTable + 4 * i);
  const bs = bwdData + (b0 & OFFSET_MASK);
  const be = bwdData + (body.readUInt32LE(bwdTable + 4 * i + 4) & OFFSET_MASK);
  if (((b0 & BACKWARD_RAW) >>> 0) !== 0) return decodeInto(body, bs, be, dst, dstOffset, blockSize, false);
  const fs = fwdData + (body.readUInt32LE(fwdTable + 4 * i) & OFFSET_MASK);
  const fe = fwdData + (body.readUInt32LE(fwdTable + 4 * i + 4) & OFFSET_MASK);
  return decodeInto(body, fs, fe, dst, dstOffset, blockSize, false) && decodeInto(body, bs, be, dst, dstOffset, blockSize, true);
}

/** src/increment/codec.ts decodeBlock, with bulk copies and a word-wide XOR. */
export function decodeInto(src: Buffer, start: number, end: number, dst: Uint8Array, dstOffset: number, blockSize: number, xor: boolean): boolean {
  if (start < 0 || end > src.byteLength || start > end) return false;
  let at = start;
  let filled = 0;
  while (filled < blockSize) {
    if (at + 8 > end) return false;
    const zeros = src.readUInt32LE(at);
    const lits = src.readUInt32LE(at + 4);
    at += 8;
    if (zeros > blockSize - filled || lits > blockSize - filled - zeros || lits > end - at) return false;
    if (zeros === 0 && lits === 0) return false;
    if (!xor && zeros > 0) dst.fill(0, dstOffset + filled, dstOffset + filled + zeros);
    filled += zeros;
    if (lits > 0) {
      if (xor) xorInto(dst, dstOffset + filled, src, at, lits);
      else src.copy(dst, dstOffset + filled, at, at + lits);
    }
    filled += lits;
    at += lits;
  }
  return at === end;
}

/** dst[d, d+len) ^= src[s, s+len) */
export function xorInto(dst: Uint8Array, d: number, src: Uint8Array, s: number, len: number): void {
  let i = 0;
  if (len >= 32 && ((dst.byteOffset + d) & 3) === 0 && ((src.byteOffset + s) & 3) === 0) {
    const words = len >>> 2;
    const a = new Int32Array(dst.buffer, dst.byteOffset + d, words);
    const b = new Int32Array(src.buffer, src.byteOffset + s, words);
    for (let w = 0; w < words; w++) a[w] ^= b[w];
    i = words << 2;
  }
  for (; i < len; i++) dst[d + i] ^= src[s + i];
}
