// The kernel memory layout promises: every region of the pool's arena lies above the module's
// static data, starts aligned, holds what it is sized for, and overlaps no other region; a slot's
// section body fits the worst case of its blocks.
import { describe, expect, it } from 'vitest';
import { RECORD_HEADER_BYTES } from '../../src/journal/record.js';
import { encodedBlockBytesMax } from '../../src/kernels/format.js';
import {
  ARENA_ALIGN, arenaLayout, FRAGMENT_BYTES, KERNEL_HEAP_START, RECORD_ENTRY_BYTES, sectionBodyBytesMax,
  SLOTS_PER_THREAD, type ArenaShape,
} from '../../src/kernels/layout.js';
import { FORWARD, sectionLayout } from '../../src/increment/block-encoding.js';

const shapes: ArenaShape[] = [
  { threads: 1, blockSize: 4096, chunkBytes: 2 << 20, windowBytesMax: 64 << 20, windowWritesMax: 65536 },
  { threads: 3, blockSize: 512, chunkBytes: 100_000, windowBytesMax: 1_000_001, windowWritesMax: 7 },
  { threads: 2, blockSize: 65536, chunkBytes: 4096, windowBytesMax: 1 << 20, windowWritesMax: 256 },
];

describe('kernel memory layout', () => {
  for (const shape of shapes) {
    it(`places disjoint, aligned regions above the heap start (${JSON.stringify(shape)})`, () => {
      const l = arenaLayout(shape);
      const regions: [string, number, number][] = [
        ['journal region', l.journalRegion.ptr, l.journalRegion.bytes],
        ['record table', l.recordTable.ptr, RECORD_ENTRY_BYTES * l.recordTable.entries],
      ];
      expect(l.journalRegion.bytes).toBeGreaterThanOrEqual(shape.windowBytesMax + shape.windowWritesMax * RECORD_HEADER_BYTES);
      expect(l.recordTable.entries).toBe(shape.windowWritesMax);
      expect(l.slots).toHaveLength(SLOTS_PER_THREAD * shape.threads);
      for (const s of l.slots) {
        const chunk = s.blocksMax * shape.blockSize;
        expect(s.blocksMax).toBe(Math.max(1, Math.floor(shape.chunkBytes / shape.blockSize)));
        expect(s.outBytes).toBeGreaterThanOrEqual(sectionBodyBytesMax(s.blocksMax, shape.blockSize));
        regions.push(
          [`slot ${s.id} old`, s.oldBlocks, chunk],
          [`slot ${s.id} new`, s.newBlocks, chunk],
          [`slot ${s.id} table`, s.table, FRAGMENT_BYTES * s.tableEntries],
          [`slot ${s.id} out`, s.out, s.outBytes],
        );
      }
      regions.sort((a, b) => a[1] - b[1]);
      expect(regions[0][1]).toBe(KERNEL_HEAP_START);
      for (let i = 0; i < regions.length; i++) {
        const [name, ptr, bytes] = regions[i];
        expect(ptr % ARENA_ALIGN, `${name} is aligned`).toBe(0);
        const end = i + 1 < regions.length ? regions[i + 1][1] : l.totalBytes;
        expect(ptr + bytes, `${name} ends before the next region`).toBeLessThanOrEqual(end);
      }
    });
  }

  it('lays a section body out as block numbers, two offsets tables, then the encodings', () => {
    expect(sectionLayout(3, 10, 20, FORWARD.PACK)).toEqual({ blockCount: 3, forward: FORWARD.PACK, fwdOffsets: 24, bwdOffsets: 40, fwdData: 56, bwdData: 66, bodyBytes: 86 });
    // A format 1 section at its worst (read back for a redo): both increments, plus the old block a backward delta was encoded beside.
    expect(sectionBodyBytesMax(3, 4096)).toBe(56 + 7 * encodedBlockBytesMax(4096));
  });
});
