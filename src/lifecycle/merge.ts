// Consolidation: consecutive packs k..m merged into one pack k..m that holds, for every block any of
// them changed, the oldest contents (from the earliest pack that changed it) and the CRC32C of the
// newest (from the latest). Why that is exact: restoring from the point after m back to the point before k sets each
// block changed in k..m back to its contents before k — which is the old contents recorded by the
// first window that changed it, since no window in between touched it before that one; and going
// forward from before k, each block ends as the latest window left it. Blocks no window changed are
// the same at both points. The points inside k..m are given up; the two ends are kept.
//
// The newest contents themselves are not kept (FORWARD.CHAIN): after m a block holds what the next
// pack that changed it recorded as its old contents, or what the replica holds.
//
// The merge runs on the kernel pool like a window's build: the oldest contents of a chunk of blocks
// are decoded into a slot's old block region, the newest blocks' CRCs written to the section's
// forward table, and the build task encodes the section from them, with no writes to coalesce. The
// packs are streamed: each is walked in block order one section at a time (pack-sections.ts), so a
// merge holds one section per pack in memory however large the packs are.
import { assert, corrupt } from '../errors.js';
import { BLOCK_NUMBER_BYTES, FORWARD, sectionLayout } from '../increment/block-encoding.js';
import { crc32c } from '../encoding/fields.js';
import { OFFSET_BYTES } from '../kernels/format.js';
import type { PackSection } from '../increment/pack.js';
import { readSection, type SectionEntry, type SectionTable } from '../increment/pack-sections.js';
import { Jobs } from '../increment/jobs.js';
import { PackWriter, type BuiltPack } from '../increment/pack-writer.js';
import type { KernelPool } from '../increment/pool.js';
import type { BuildResult } from '../increment/tasks.js';
import { putU64 } from '../encoding/fields.js';
import type { Storage } from '../storage/storage.js';

export interface MergeContext {
  storage: Storage;
  /** The increments directory. */
  dir: string;
  blockSize: number;
  pool: KernelPool;
}

type BlockAt = { section: PackSection; index: number };

/**
 * Merges the packs whose section tables are `packs` (consecutive, in seq order, at least two) into one
 * new durable pack named for their range. It streams: each pack is walked in block order a section
 * at a time, so it holds one section body per pack in memory, whatever the packs' sizes.
 */
export async function mergePacks(ctx: MergeContext, packs: readonly SectionTable[]): Promise<BuiltPack> {
  assert(packs.length >= 2, `a merge takes at least two packs (${packs.length})`);
  for (let i = 1; i < packs.length; i++) {
    assert(packs[i].header.firstSeq === packs[i - 1].header.lastSeq + 1, `merged packs are consecutive (${packs[i - 1].path}, ${packs[i].path})`);
  }
  const B = ctx.blockSize;
  for (const p of packs) assert(p.header.blockSize === B, `pack ${p.path} has the store's block size ${B}`);
  const first = packs[0].header;
  const last = packs[packs.length - 1].header;
  const out = new PackWriter(ctx.storage, ctx.dir, first.firstSeq, last.lastSeq);
  try {
    const volumes = [...new Set(packs.flatMap((p) => p.sections.map((s) => s.volume)))].sort((a, b) => a - b);
    for (const volume of volumes) await mergeVolume(ctx, out, packs, volume);
    return await out.finish({
      t1: first.t1, t2: last.t2, blockSize: B,
      writes: packs.reduce((n, p) => n + p.header.writes, 0),
      bytesWritten: packs.reduce((n, p) => n + p.header.bytesWritten, 0),
      forward: FORWARD.CHAIN,
    });
  } catch (err) {
    out.abort();
    throw err;
  }
}

async function mergeVolume(ctx: MergeContext, out: PackWriter, packs: readonly SectionTable[], volume: number): Promise<void> {
  const { pool, blockSize: B } = ctx;
  const heap = new CursorHeap();
  packs.forEach((table, rank) => {
    const c = new SectionCursor(ctx.storage, table, volume, rank);
    if (c.block !== Infinity) heap.push(c);
  });
  const M = pool.slots[0].blocksMax;
  const jobs = new Jobs();
  const taken: SectionCursor[] = [];
  while (heap.size > 0) {
    const slot = await pool.acquire();
    const chunk: number[] = [];
    const crcs = new Uint32Array(M);
    try {
      const mem = pool.bytes();
      // Block by block in order: every pack that changed the block is at its head; the first of them
      // (in seq order) gives the old contents, the last the new contents' CRC.
      while (heap.size > 0 && chunk.length < M) {
        const block = heap.top.block;
        taken.length = 0;
        while (heap.size > 0 && heap.top.block === block) taken.push(heap.pop());
        let oldest = taken[0];
        let newest = taken[0];
        for (const c of taken) {
          if (c.rank < oldest.rank) oldest = c;
          if (c.rank > newest.rank) newest = c;
        }
        const i = chunk.length;
        decodeOrThrow(oldest.at, 'old', mem, slot.oldBlocks + i * B, B);
        crcs[i] = newestCrc(newest.at, mem, slot.newBlocks, B);
        chunk.push(block);
        for (const c of taken) {
          c.advance();
          if (c.block !== Infinity) heap.push(c);
        }
      }
    } catch (err) {
      pool.release(slot);
      throw err;
    }
    const n = chunk.length;
    const layout = sectionLayout(n, 0, 0);
    const body = pool.buffer(slot.out, layout.bwdOffsets);
    for (let i = 0; i < n; i++) {
      putU64(body, BLOCK_NUMBER_BYTES * i, chunk[i]);
      body.writeUInt32LE(crcs[i], layout.fwdOffsets + OFFSET_BYTES * i);
    }
    const job = (async () => {
      const res = (await pool.run({ kind: 'build', table: slot.table, count: 0, blockCount: n, blockSize: B, oldBlocks: slot.oldBlocks, newBlocks: 0, out: slot.out })) as BuildResult;
      await out.addSection(volume, chunk, res, pool.buffer(slot.out, slot.outBytes));
    })().finally(() => pool.release(slot));
    jobs.add(job);
  }
  await jobs.settle();
}

/**
 * One pack's sections of one volume, walked in block order with one section body in memory. The
 * sections of a volume hold disjoint runs of blocks (chunks of its sorted changed blocks); a pack
 * whose runs overlap is damaged.
 */
class SectionCursor {
  private readonly entries: SectionEntry[];
  private next = 0;
  private section: PackSection | null = null;
  private index = 0;
  /** The current block, Infinity once past the last. */
  block = Infinity;

  constructor(private readonly storage: Storage, private readonly table: SectionTable, volume: number, readonly rank: number) {
    this.entries = table.sections.filter((e) => e.volume === volume && e.blockCount > 0).sort((a, b) => a.firstBlock - b.firstBlock);
    for (let k = 1; k < this.entries.length; k++) {
      if (this.entries[k].firstBlock <= this.entries[k - 1].lastBlock) throw corrupt(table.path, this.entries[k].bodyPos, `sections of volume index ${volume} overlap`);
    }
    this.load();
  }

  get at(): BlockAt {
    return { section: this.section!, index: this.index };
  }

  advance(): void {
    this.index++;
    if (this.index < this.section!.blocks.length) this.block = this.section!.blocks[this.index];
    else this.load();
  }

  private load(): void {
    this.section = null;
    this.block = Infinity;
    if (this.next >= this.entries.length) return;
    const e = this.entries[this.next++];
    // Opened for each section: a step may merge many small packs, and descriptors are a limit too.
    const f = this.storage.open(this.table.path, 'read');
    try {
      this.section = readSection(f, this.table, e);
    } finally {
      f.close();
    }
    this.index = 0;
    this.block = this.section.blocks[0];
  }
}

/** A binary min-heap of cursors by current block. */
class CursorHeap {
  private readonly items: SectionCursor[] = [];

  get size(): number {
    return this.items.length;
  }

  get top(): SectionCursor {
    return this.items[0];
  }

  push(c: SectionCursor): void {
    const a = this.items;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (a[up].block <= a[i].block) break;
      [a[up], a[i]] = [a[i], a[up]];
      i = up;
    }
  }

  pop(): SectionCursor {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].block < a[m].block) m = l;
        if (r < a.length && a[r].block < a[m].block) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/** The CRC32C of a block's newest contents: carried over, or (a format 1 pack) taken of its decoded forward encoding. */
function newestCrc(at: BlockAt, mem: Uint8Array, scratch: number, B: number): number {
  if (at.section.forward !== FORWARD.PACK) return at.section.newCrc(at.index);
  decodeOrThrow(at, 'new', mem, scratch, B);
  return crc32c(mem.subarray(scratch, scratch + B));
}

function decodeOrThrow(at: BlockAt, which: 'old' | 'new', mem: Uint8Array, dst: number, B: number): void {
  // Sections are checked (CRCs) when read; a malformed encoding past that is a bug, not damage.
  assert(at.section.decode(at.index, which, mem, dst, B), `block ${at.section.blocks[at.index]} of a checked pack decodes (${which})`);
}

/**
 * Which consecutive packs of a run one merge step takes (indices from..to, at least two): the adjacent
 * pair smallest together, grown towards its smaller neighbour while the packs fit `budget` bytes.
 * Merging the smallest neighbours first builds a balanced tree, so each byte of a long period is read
 * a logarithmic number of times, not once for every pack that joins the period's growing result.
 */
export function mergeStep(sizes: readonly number[], budget: number): { from: number; to: number; bytes: number } {
  assert(sizes.length >= 2, `a merge step takes at least two packs (${sizes.length})`);
  let from = 0;
  for (let i = 1; i + 1 < sizes.length; i++) if (sizes[i] + sizes[i + 1] < sizes[from] + sizes[from + 1]) from = i;
  let to = from + 1;
  let bytes = sizes[from] + sizes[to];
  for (;;) {
    const left = from > 0 ? sizes[from - 1] : Infinity;
    const right = to + 1 < sizes.length ? sizes[to + 1] : Infinity;
    const next = Math.min(left, right);
    if (next === Infinity || bytes + next > budget) break;
    if (left <= right) from--;
    else to++;
    bytes += next;
  }
  return { from, to, bytes };
}
