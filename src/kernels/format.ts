// The zero-run block encoding shared by the WASM kernels (assembly/kernels.ts) and their
// TypeScript twins (src/kernels/reference.ts). Declared once here.
//
// A block (blockSize bytes, a power of two in [BLOCK_BYTES_MIN, BLOCK_BYTES_MAX]) is seen as
// CHUNK_BYTES-byte chunks. Its encoding is a sequence of tokens:
//   u32le zeroBytes, u32le literalBytes, then literalBytes raw bytes
// where each token is a (possibly empty) run of all-zero chunks followed by a maximal run of
// chunks that are not all zero. Only the last token may have literalBytes = 0 (trailing
// zeros); only the first may have zeroBytes = 0. Examples:
//   all-zero block      -> (blockSize, 0)                    8 bytes
//   no zero chunk       -> (0, blockSize) + blockSize bytes
//   [Z Z L L Z]         -> (32, 32) + 32 bytes, (16, 0)
// A set of encoded blocks is described by an offsets table of blockCount + 1 u32le values,
// relative to the first encoding: block i is bytes [offsets[i], offsets[i+1]).
//
// The encoder is canonical (the same bytes for the same block); the decoder accepts any
// token sequence that covers exactly blockSize bytes, rejecting empty (0, 0) tokens.

export const CHUNK_BYTES = 16;
export const TOKEN_HEADER_BYTES = 8;
/** An entry of an offsets table (u32le). */
export const OFFSET_BYTES = 4;
export const BLOCK_BYTES_MIN = 512;
export const BLOCK_BYTES_MAX = 65536;

/** Worst case: alternating literal and zero chunks, one token per 32 bytes, plus one. */
export function encodedBlockBytesMax(blockSize: number): number {
  return blockSize + TOKEN_HEADER_BYTES * (blockSize / (2 * CHUNK_BYTES) + 1);
}

export function isValidBlockSize(blockSize: number): boolean {
  return (
    Number.isInteger(blockSize) &&
    blockSize >= BLOCK_BYTES_MIN &&
    blockSize <= BLOCK_BYTES_MAX &&
    (blockSize & (blockSize - 1)) === 0
  );
}
