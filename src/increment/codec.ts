// The block encoding of increments, decoded in plain TypeScript for the read paths (views,
// restores, verify). The WebAssembly kernels produce it; src/kernels/reference.ts is the
// specification both are tested against.
//
// A block's encoding is a run of tokens: u32 zero bytes, u32 literal bytes, then the literal
// bytes; the tokens cover exactly one block.

/** Bit 31 of a backward offset: the encoding is of the old block itself, not of old XOR new. */
export const BACKWARD_RAW = 0x8000_0000;
export const OFFSET_MASK = 0x7fff_ffff;

/**
 * Decodes one block encoding `src[start, end)` into `dst[dstOffset, dstOffset+blockSize)`,
 * overwriting (zero runs write zeros) or XORing literals in (zero runs leave bytes alone).
 * Returns false for an encoding that does not cover exactly one block.
 */
export function decodeBlock(src: Uint8Array, start: number, end: number, dst: Uint8Array, dstOffset: number, blockSize: number, xor: boolean): boolean {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  let at = start;
  let filled = 0;
  while (filled < blockSize) {
    if (at + 8 > end) return false;
    const zeros = view.getUint32(at, true);
    const lits = view.getUint32(at + 4, true);
    at += 8;
    if (zeros > blockSize - filled || lits > blockSize - filled - zeros || lits > end - at) return false;
    if (!xor && zeros > 0) dst.fill(0, dstOffset + filled, dstOffset + filled + zeros);
    filled += zeros;
    if (xor) {
      const d = dstOffset + filled;
      for (let i = 0; i < lits; i++) dst[d + i] ^= src[at + i];
    } else {
      dst.set(src.subarray(at, at + lits), dstOffset + filled);
    }
    filled += lits;
    at += lits;
    if (zeros === 0 && lits === 0) return false;
  }
  return at === end;
}
