// The zero-run block encoding of increments and the layout of a pack section's body: the one place
// TypeScript reads them. The WebAssembly kernels (assembly/kernels.ts) write the encoding, the
// format is declared in src/kernels/format.ts, and src/kernels/reference.ts is the plain twin the
// kernels and this decoder are both tested against.
//
// A block's encoding is a run of tokens: u32 zero bytes, u32 literal bytes, then the literal bytes;
// the tokens cover exactly one block. Literals are copied with Buffer.copy and XORed 32 bits at a
// time when both sides are 4-byte aligned (they are in packs and in block-aligned buffers): the XOR
// form (old = new XOR delta) is what a pack holds for most blocks, so a restore far back spends
// most of its decoding time in xorInto.
//
// section body (n blocks, little-endian)
//   n u64 block numbers (ascending) | n+1 u32 forward table | n+1 u32 backward offsets
//   | forward encodings | backward encodings
// What the forward table and the backward encodings hold depends on where the pack keeps its
// forward increment (its header says, src/increment/pack.ts):
//   - in the pack (format 1): the forward table holds offsets of the new blocks' encodings; bit 31
//     of a backward offset (i < n) says which backward encoding block i has: set, the old block
//     itself; clear, old XOR new (which needs the new block to decode).
//   - in the journal, or in the chain (format 2): no forward encodings (0 bytes); forward table
//     entry i < n is the CRC32C of block i's new contents (entry n is zero), and every backward
//     encoding is the old block itself, so a pack restores its old contents on its own.
// Offsets are relative to the start of their encodings.
import { OFFSET_BYTES, TOKEN_HEADER_BYTES } from '../kernels/format.js';
import { assert } from '../errors.js';

/** Bit 31 of a backward offset: the encoding is of the old block itself, not of old XOR new. */
export const BACKWARD_RAW = 0x8000_0000;
export const OFFSET_MASK = 0x7fff_ffff;
/** A block number at the head of a section body (u64). */
export const BLOCK_NUMBER_BYTES = 8;

/**
 * Where a pack keeps the new contents of its blocks (its forward increment):
 * - PACK: encoded in the pack (format 1 packs);
 * - JOURNAL: the window's journal records are the forward increment, replayed over the old contents
 *   (a window's own pack while its journal segment is kept);
 * - CHAIN: not kept, since they are derivable: a block's contents after the pack are the old contents
 *   of the next pack that changed it, or the replica's (a merged pack, or a window's pack once its
 *   journal segment is retired, which needs nothing from the journal: it holds the old blocks whole).
 * JOURNAL and CHAIN packs carry a CRC32C of each new block instead (verify checks the replica with it).
 */
export const FORWARD = { PACK: 0, JOURNAL: 1, CHAIN: 2 } as const;
export type ForwardKind = (typeof FORWARD)[keyof typeof FORWARD];

export const isForwardKind = (v: number): v is ForwardKind => v === FORWARD.PACK || v === FORWARD.JOURNAL || v === FORWARD.CHAIN;

/** Where each part of a section body starts, in bytes from the start of the body. */
export interface SectionLayout {
  readonly blockCount: number;
  readonly forward: ForwardKind;
  /** The block numbers start the body (at 0) and end here. */
  readonly fwdOffsets: number;
  readonly bwdOffsets: number;
  readonly fwdData: number;
  readonly bwdData: number;
  readonly bodyBytes: number;
}

export function sectionLayout(blockCount: number, fwdBytes: number, bwdBytes: number, forward: ForwardKind = FORWARD.JOURNAL): SectionLayout {
  const fwdOffsets = BLOCK_NUMBER_BYTES * blockCount;
  const bwdOffsets = fwdOffsets + OFFSET_BYTES * (blockCount + 1);
  const fwdData = bwdOffsets + OFFSET_BYTES * (blockCount + 1);
  const bwdData = fwdData + fwdBytes;
  return { blockCount, forward, fwdOffsets, bwdOffsets, fwdData, bwdData, bodyBytes: bwdData + bwdBytes };
}

export const sectionBodyBytes = (blockCount: number, fwdBytes: number, bwdBytes: number) => sectionLayout(blockCount, fwdBytes, bwdBytes).bodyBytes;

/**
 * Writes block `i` of a section body after its window (`new`) or before it (`old`) into
 * `dst[dstOffset, +blockSize)`. Returns false for a malformed encoding or an `i` out of range.
 * `new` needs a pack that holds its forward increment (FORWARD.PACK).
 */
export function decodeSectionBlock(body: Buffer, layout: SectionLayout, i: number, which: 'new' | 'old', dst: Uint8Array, dstOffset: number, blockSize: number): boolean {
  if (!Number.isInteger(i) || i < 0 || i >= layout.blockCount) return false;
  if (layout.forward !== FORWARD.PACK) {
    assert(which === 'old', `the new contents of a block are decoded only from a pack that holds them (block ${i})`);
    const bs = layout.bwdData + body.readUInt32LE(layout.bwdOffsets + 4 * i);
    const be = layout.bwdData + body.readUInt32LE(layout.bwdOffsets + 4 * i + 4);
    return decodeBlock(body, bs, be, dst, dstOffset, blockSize, false);
  }
  const fs = layout.fwdData + (body.readUInt32LE(layout.fwdOffsets + 4 * i) & OFFSET_MASK);
  const fe = layout.fwdData + (body.readUInt32LE(layout.fwdOffsets + 4 * i + 4) & OFFSET_MASK);
  if (which === 'new') return decodeBlock(body, fs, fe, dst, dstOffset, blockSize, false);
  const b0 = body.readUInt32LE(layout.bwdOffsets + 4 * i);
  const bs = layout.bwdData + (b0 & OFFSET_MASK);
  const be = layout.bwdData + (body.readUInt32LE(layout.bwdOffsets + 4 * i + 4) & OFFSET_MASK);
  if ((b0 & BACKWARD_RAW) !== 0) return decodeBlock(body, bs, be, dst, dstOffset, blockSize, false);
  return decodeBlock(body, fs, fe, dst, dstOffset, blockSize, false) && decodeBlock(body, bs, be, dst, dstOffset, blockSize, true);
}

/** The CRC32C of block `i`'s new contents, which a pack without forward encodings carries. */
export function sectionNewCrc(body: Buffer, layout: SectionLayout, i: number): number {
  assert(layout.forward !== FORWARD.PACK && Number.isInteger(i) && i >= 0 && i < layout.blockCount, `a new-block CRC is read from a pack that keeps them, for a block it holds (block ${i})`);
  return body.readUInt32LE(layout.fwdOffsets + 4 * i);
}

/**
 * Decodes one block encoding `src[start, end)` into `dst[dstOffset, dstOffset+blockSize)`,
 * overwriting (zero runs write zeros) or XORing literals in (zero runs leave bytes alone).
 * Returns false for an encoding that does not cover exactly one block: cut short, running past
 * `end`, with an empty token, or with bytes left over.
 */
export function decodeBlock(bytes: Uint8Array, start: number, end: number, dst: Uint8Array, dstOffset: number, blockSize: number, xor: boolean): boolean {
  const src = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (start < 0 || end > src.byteLength || start > end) return false;
  let at = start;
  let filled = 0;
  while (filled < blockSize) {
    if (at + TOKEN_HEADER_BYTES > end) return false;
    const zeros = src.readUInt32LE(at);
    const lits = src.readUInt32LE(at + 4);
    at += TOKEN_HEADER_BYTES;
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

/** dst[d, d+len) ^= src[s, s+len), a word at a time when both sides are 4-byte aligned. */
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
