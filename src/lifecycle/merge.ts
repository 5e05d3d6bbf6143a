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
// forward table, and the build task encodes the section from them, with no writes to coalesce.
import { assert } from '../errors.js';
import { BLOCK_NUMBER_BYTES, FORWARD, sectionLayout } from '../increment/block-encoding.js';
import { crc32c } from '../encoding/fields.js';
import { OFFSET_BYTES } from '../kernels/format.js';
import type { Pack, PackSection } from '../increment/pack.js';
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

/** Merges `packs` (consecutive, in seq order, at least two) into one new durable pack named for their range. */
export async function mergePacks(ctx: MergeContext, packs: readonly Pack[]): Promise<BuiltPack> {
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

async function mergeVolume(ctx: MergeContext, out: PackWriter, packs: readonly Pack[], volume: number): Promise<void> {
  const { pool, blockSize: B } = ctx;
  const oldest = new Map<number, BlockAt>();
  const newest = new Map<number, BlockAt>();
  for (const p of packs) {
    for (const section of p.sections) {
      if (section.volume !== volume) continue;
      for (let index = 0; index < section.blocks.length; index++) {
        const block = section.blocks[index];
        if (!oldest.has(block)) oldest.set(block, { section, index });
        newest.set(block, { section, index });
      }
    }
  }
  const blocks = [...oldest.keys()].sort((a, b) => a - b);
  const M = pool.slots[0].blocksMax;
  const jobs = new Jobs();
  for (let c = 0; c < blocks.length; c += M) {
    const chunk = blocks.slice(c, c + M);
    const slot = await pool.acquire();
    const job = (async () => {
      const mem = pool.bytes();
      const layout = sectionLayout(chunk.length, 0, 0);
      const body = pool.buffer(slot.out, layout.bwdOffsets);
      for (let i = 0; i < chunk.length; i++) {
        decodeOrThrow(oldest.get(chunk[i])!, 'old', mem, slot.oldBlocks + i * B, B);
        body.writeUInt32LE(newestCrc(newest.get(chunk[i])!, mem, slot.newBlocks, B), layout.fwdOffsets + OFFSET_BYTES * i);
        putU64(body, BLOCK_NUMBER_BYTES * i, chunk[i]);
      }
      const res = (await pool.run({ kind: 'build', table: slot.table, count: 0, blockCount: chunk.length, blockSize: B, oldBlocks: slot.oldBlocks, newBlocks: 0, out: slot.out })) as BuildResult;
      await out.addSection(volume, chunk, res, pool.buffer(slot.out, slot.outBytes));
    })().finally(() => pool.release(slot));
    jobs.add(job);
  }
  await jobs.settle();
}

/** The CRC32C of a block's newest contents: carried over, or (a format 1 pack) taken of its decoded forward encoding. */
function newestCrc(at: BlockAt, mem: Uint8Array, scratch: number, B: number): number {
  if (at.section.forward !== FORWARD.PACK) return at.section.newCrc(at.index);
  decodeOrThrow(at, 'new', mem, scratch, B);
  return crc32c(mem.subarray(scratch, scratch + B));
}

function decodeOrThrow(at: BlockAt, which: 'old' | 'new', mem: Uint8Array, dst: number, B: number): void {
  // Packs were checked (CRCs) when read; a malformed encoding past that is a bug, not damage.
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
