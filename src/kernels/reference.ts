// Plain-TypeScript twins of the WASM kernels (assembly/kernels.ts): same operations, same
// pointer arguments, over `mem`, a Uint8Array standing for the whole memory. Written to be
// obviously correct, not fast; the kernel tests compare the WASM output to these byte for byte.

import { CHUNK_BYTES, TOKEN_HEADER_BYTES } from './format.js';

function readU32(mem: Uint8Array, at: number): number {
  return (mem[at]! | (mem[at + 1]! << 8) | (mem[at + 2]! << 16) | (mem[at + 3]! << 24)) >>> 0;
}

function writeU32(mem: Uint8Array, at: number, value: number): void {
  mem[at] = value & 0xff;
  mem[at + 1] = (value >>> 8) & 0xff;
  mem[at + 2] = (value >>> 16) & 0xff;
  mem[at + 3] = (value >>> 24) & 0xff;
}

export function xor(mem: Uint8Array, dst: number, a: number, b: number, len: number): void {
  for (let i = 0; i < len; i++) mem[dst + i] = mem[a + i]! ^ mem[b + i]!;
}

export function coalesce(mem: Uint8Array, table: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const dst = readU32(mem, table + 12 * i);
    const src = readU32(mem, table + 12 * i + 4);
    const len = readU32(mem, table + 12 * i + 8);
    mem.copyWithin(dst, src, src + len);
  }
}

function isZeroChunk(chunk: (i: number) => number, at: number): boolean {
  for (let i = 0; i < CHUNK_BYTES; i++) if (chunk(at + i) !== 0) return false;
  return true;
}

/** Encodes blocks whose byte i is `byteAt(i)`; shared by zeroRunEncode and deltaEncode. */
function encodeBlocks(
  mem: Uint8Array,
  byteAt: (i: number) => number,
  blockCount: number,
  blockSize: number,
  out: number,
  offsets: number,
): number {
  let written = 0;
  for (let block = 0; block < blockCount; block++) {
    writeU32(mem, offsets + 4 * block, written);
    const base = block * blockSize;
    let p = 0;
    do {
      let zeroBytes = 0;
      while (p < blockSize && isZeroChunk(byteAt, base + p)) {
        zeroBytes += CHUNK_BYTES;
        p += CHUNK_BYTES;
      }
      const literalStart = p;
      while (p < blockSize && !isZeroChunk(byteAt, base + p)) p += CHUNK_BYTES;
      const literalBytes = p - literalStart;
      writeU32(mem, out + written, zeroBytes);
      writeU32(mem, out + written + 4, literalBytes);
      written += TOKEN_HEADER_BYTES;
      for (let i = 0; i < literalBytes; i++) mem[out + written + i] = byteAt(base + literalStart + i);
      written += literalBytes;
    } while (p < blockSize);
  }
  writeU32(mem, offsets + 4 * blockCount, written);
  return written;
}

export function zeroRunEncode(
  mem: Uint8Array,
  src: number,
  blockCount: number,
  blockSize: number,
  out: number,
  offsets: number,
): number {
  return encodeBlocks(mem, (i) => mem[src + i]!, blockCount, blockSize, out, offsets);
}

export function deltaEncode(
  mem: Uint8Array,
  a: number,
  b: number,
  blockCount: number,
  blockSize: number,
  out: number,
  offsets: number,
): number {
  return encodeBlocks(mem, (i) => mem[a + i]! ^ mem[b + i]!, blockCount, blockSize, out, offsets);
}

/**
 * Decodes one block; returns bytes consumed or -1 if malformed. Writes token by token, in
 * the same order as the kernel, so even a rejected block leaves the same bytes behind.
 */
export function zeroRunDecode(
  mem: Uint8Array,
  enc: number,
  encLen: number,
  dst: number,
  blockSize: number,
  xorMode: 0 | 1,
): number {
  let covered = 0;
  let used = 0;
  while (covered < blockSize) {
    if (encLen - used < TOKEN_HEADER_BYTES) return -1;
    const zeroBytes = readU32(mem, enc + used);
    const literalBytes = readU32(mem, enc + used + 4);
    used += TOKEN_HEADER_BYTES;
    if (zeroBytes === 0 && literalBytes === 0) return -1;
    if (covered + zeroBytes + literalBytes > blockSize) return -1;
    if (used + literalBytes > encLen) return -1;
    if (xorMode === 0) mem.fill(0, dst + covered, dst + covered + zeroBytes);
    covered += zeroBytes;
    for (let i = 0; i < literalBytes; i++) {
      const byte = mem[enc + used + i]!;
      mem[dst + covered + i] = xorMode === 0 ? byte : mem[dst + covered + i]! ^ byte;
    }
    covered += literalBytes;
    used += literalBytes;
  }
  return used;
}

/** Returns 0, or -(i + 1) when block i is malformed; `encLen` bounds every offset. */
export function zeroRunDecodeBlocks(
  mem: Uint8Array,
  enc: number,
  offsets: number,
  blockCount: number,
  dst: number,
  blockSize: number,
  xorMode: 0 | 1,
  encLen: number = mem.length - enc,
): number {
  for (let i = 0; i < blockCount; i++) {
    const start = readU32(mem, offsets + 4 * i);
    const end = readU32(mem, offsets + 4 * i + 4);
    if (end <= start || end > encLen) return -(i + 1);
    const used = zeroRunDecode(mem, enc + start, end - start, dst + i * blockSize, blockSize, xorMode);
    if (used !== end - start) return -(i + 1);
  }
  return 0;
}

const CRC32C_POLY_REFLECTED = 0x82f63b78;
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_REFLECTED : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32C of `data`, chainable: crc32c(b, crc32c(a)) === crc32c(a ‖ b). */
export function crc32c(data: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The pointer form, like the kernel's. */
export function crc32cAt(mem: Uint8Array, ptr: number, len: number, seed = 0): number {
  return crc32c(mem.subarray(ptr, ptr + len), seed);
}
