// The blocks of one volume changed after a point, from the packs alone: every block a pack after the
// point lists in its sections for that volume. They are grouped by the earliest such pack, which is
// the pack a view of the point sets the block back from, so reading the old contents group by group
// loads each pack once. The cost follows the packs after the point (the bytes changed since), never
// the size of the volume.
//
// A superset, never less: the pack holding the point itself lists blocks its window changed before
// the point too (a reader compares before it writes). Writes not applied yet are not in any pack:
// the caller settles the store first.
import type { PackRef } from '../restore/catalog.js';
import type { PackCache } from '../restore/pack-cache.js';
import { PackStream } from '../restore/pack-stream.js';
import { BlockSet, sectionsOf } from '../restore/rollback.js';
import type { Storage } from '../storage/storage.js';

/** Blocks (ascending) whose earliest change after the point is in `pack`. */
export interface ChangedGroup {
  pack: PackRef;
  blocks: number[];
}

export interface ChangedBlocks {
  groups: ChangedGroup[];
  /** Blocks in all groups (each block is in one group). */
  count: number;
}

/** The blocks of volume `vol` the packs `after` (in sequence order, all ending after the point) change. */
export function changedBlocks(storage: Storage, cache: PackCache, after: readonly PackRef[], vol: number): ChangedBlocks {
  const stream = new PackStream(storage);
  const seen = new BlockSet();
  const groups: ChangedGroup[] = [];
  let count = 0;
  for (const p of after) {
    const blocks: number[] = [];
    for (const s of sectionsOf(p, cache, stream)) {
      if (s.volume !== vol) continue;
      for (const b of s.blocks) if (seen.add(b)) blocks.push(b);
    }
    if (blocks.length === 0) continue;
    blocks.sort((a, b) => a - b);
    groups.push({ pack: p, blocks });
    count += blocks.length;
  }
  return { groups, count };
}
