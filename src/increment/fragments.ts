// The fragment table of a slot: the writes of a window clipped to one chunk of changed blocks, as
// (destination, source, length) copies the coalesce kernel applies in order, so each block ends as
// the last write left it. The builder fills it to compute a chunk's new blocks from its old ones;
// the replica apply fills it to replay the window over the old blocks its pack holds.
import { assert } from '../errors.js';
import { FRAGMENT_BYTES } from '../kernels/layout.js';
import type { KernelPool, Slot } from './pool.js';
import type { LoadedWindow, VolumeWrites } from './window-records.js';

/** A fragment is three u32: destination, source, length. */
const FRAGMENT_WORDS = FRAGMENT_BYTES / 4;

export interface ChunkWrites {
  /** Where the chunk's blocks are in the arena (each block B bytes, in the order of `blocks`). */
  dst: number;
  /** The chunk: changed blocks [start, start + count) of `volume`. */
  start: number;
  count: number;
  volume: VolumeWrites;
  loaded: LoadedWindow;
}

/**
 * Writes the chunk's fragments into the slot's table after `head` (fragments placed first, such as
 * "new = old"), running the coalesce kernel whenever the table is full. Returns the number of
 * fragments left in the table, not yet applied.
 */
export async function fillFragments(pool: KernelPool, slot: Slot, c: ChunkWrites, head: readonly [number, number, number][] = []): Promise<number> {
  const B = c.volume.blockSize;
  const blocks = c.volume.blocks;
  assert(slot.table % 4 === 0, 'a fragment table is u32-aligned');
  const table = new Uint32Array(pool.memory.buffer, slot.table, slot.tableEntries * FRAGMENT_WORDS);
  let count = 0;
  /** Adds one fragment; true when the table is full and must be applied before the next. */
  const push = (dst: number, from: number, len: number): boolean => {
    const at = count * FRAGMENT_WORDS;
    table[at] = dst;
    table[at + 1] = from;
    table[at + 2] = len;
    return ++count === slot.tableEntries;
  };
  const applyFull = async () => {
    await pool.run({ kind: 'coalesce', table: slot.table, count });
    count = 0;
  };
  for (const [dst, from, len] of head) if (push(dst, from, len)) await applyFull();
  const end = c.start + c.count - 1;
  const { payload, window } = c.loaded;
  const records = c.volume.records;
  for (const k of c.volume.touching(c.start, end)) {
    const r = records[k];
    const startIndex = Math.max(c.volume.firstIndex(k), c.start);
    const endIndex = Math.min(c.volume.lastIndex(k), end);
    const byteFrom = Math.max(r.offset, blocks[startIndex] * B);
    const byteTo = Math.min(r.offset + r.length, (blocks[endIndex] + 1) * B);
    if (byteTo <= byteFrom) continue;
    const dst = c.dst + (startIndex - c.start) * B + (byteFrom - blocks[startIndex] * B);
    if (push(dst, payload[r.seq - window.firstSeq] + (byteFrom - r.offset), byteTo - byteFrom)) await applyFull();
  }
  return count;
}
