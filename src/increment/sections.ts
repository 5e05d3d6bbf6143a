// Where the sections of a pack lie in its file, and the runs of consecutive blocks in a section:
// what the builder records as it writes a pack, recovery rebuilds from a pack it reads back, and the
// replica needs to apply a pack's forward increment.
import type { Pack } from './pack.js';

/** Where one section of a pack lies, enough to apply it or read it back. */
export interface SectionPlacement {
  volume: number;
  blocks: number[];
  bodyPos: number;
  bodyBytes: number;
  fwdBytes: number;
  bwdBytes: number;
}

/** The placements of a pack read back whole (as recovery does to redo a window). */
export function sectionPlacements(pack: Pack): SectionPlacement[] {
  return pack.sections.map((s) => ({
    volume: s.volume, blocks: s.blocks, bodyPos: s.bodyPos, bodyBytes: s.body.byteLength, fwdBytes: s.fwdBytes, bwdBytes: s.bwdBytes,
  }));
}

/** Runs of blocks up to this size are read and written synchronously; larger ones on the I/O pool. */
export const SYNC_IO_BYTES_MAX = 64 * 1024;

/**
 * Calls `fn` once per run of consecutive block numbers in `blocks` (ascending), with the index of
 * the run's first block in `blocks`, its block number and the run's length in blocks: one read or
 * write per run instead of one per block.
 */
export function forEachRun(blocks: readonly number[], fn: (firstIndex: number, firstBlock: number, count: number) => void): void {
  let i = 0;
  while (i < blocks.length) {
    let j = i;
    while (j + 1 < blocks.length && blocks[j + 1] === blocks[j] + 1) j++;
    fn(i, blocks[i], j - i + 1);
    i = j + 1;
  }
}
