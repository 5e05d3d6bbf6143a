// Every limit rewind enforces, in one place. Input is checked against these where it arrives.

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

export const LIMITS = {
  /** Largest single write (and read) of the store; `rewind serve` splits longer NBD requests (serve/exports.ts). */
  writeBytesMax: 32 * MiB,
  /** Journal segments are sealed once they pass this size. */
  segmentBytesMax: 64 * MiB,
  /** A transaction window closes before it holds more than this many bytes of writes... */
  windowBytesMax: 64 * MiB,
  /** ...or more than this many writes. */
  windowWritesMax: 65536,
  /**
   * Writes wait while closed windows not yet applied hold more than this many bytes: the bound on
   * how far the replica may lag behind capture. The bytes themselves are in the journal; memory
   * holds only each pending write's indicia (about 100 bytes a write).
   */
  pendingBytesMax: 1 * GiB,
  /** Volume size bounds (sizes are multiples of the block size). */
  volumeBytesMax: 16 * TiB,
  volumesMax: 256,
  volumeNameBytesMax: 64,
  blockSizeMin: 512,
  blockSizeMax: 65536,
  /** Bytes of changed blocks handed to one worker task. */
  chunkBytes: 2 * MiB,
  /**
   * The transaction index is rewritten without the entries of retired windows once at least this many
   * (and a quarter of the index) can go: 128 KiB of entries, rewritten at most every 1024 windows.
   */
  indexCompactEntriesMin: 1024,
} as const;

export type Limits = { -readonly [K in keyof typeof LIMITS]: number };

export const units = { KiB, MiB, GiB, TiB };
