// The replica: the backup image of each volume, equal to production as of the last applied window.
// A window is applied by writing the new contents of its changed blocks in block (offset) order,
// then syncing. The new blocks are made from the window's pack and its journal records: the pack's
// old blocks (the backward increment), with the window's writes replayed over them (the forward
// increment is the journal). A pack of format 1 carries its new blocks encoded; those are decoded.
// Either way the replica is never read, so a retry after a partial write, or a redo after a crash,
// makes the same blocks.
import { corrupt, assert } from '../errors.js';
import { readAsync, writeAsync, type Storage } from '../storage/storage.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { FORWARD, sectionLayout, type ForwardKind } from '../increment/block-encoding.js';
import { forEachRun, SYNC_IO_BYTES_MAX, type SectionPlacement } from '../increment/sections.js';
import { Jobs, slotIo } from '../increment/jobs.js';
import type { KernelPool, Slot } from '../increment/pool.js';
import { fillFragments } from '../increment/fragments.js';
import { indexOfBlock, volumeWritesOf, type VolumeWrites, type LoadedWindow } from '../increment/window-records.js';

export interface ReplicaContext {
  storage: Storage;
  blockSize: number;
  volumes: VolumeSet;
  pool: KernelPool;
}

/** A window's pack as apply needs it: where its sections are, and where its forward increment is. */
export interface PackToApply {
  path: string;
  forward: ForwardKind;
  sections: SectionPlacement[];
}

/**
 * Writes every section's new blocks to the replicas (not synced: see syncReplicas). `loaded`: the
 * window's journal records in the journal region (a pack with FORWARD.JOURNAL). Returns the volumes written.
 */
export async function applyWindow(ctx: ReplicaContext, pack: PackToApply, loaded: LoadedWindow | null): Promise<number[]> {
  const { pool, blockSize: B } = ctx;
  assert(pack.forward !== FORWARD.CHAIN, `a window is applied from its own pack (${pack.path})`);
  assert(pack.forward === FORWARD.PACK || loaded !== null, `pack ${pack.path} is applied with its window's journal records`);
  const writes = new Map<number, VolumeWrites>();
  if (loaded) {
    for (const v of new Set(pack.sections.map((s) => s.volume))) writes.set(v, volumeWritesOf(loaded, v, B));
  }
  const file = ctx.storage.open(pack.path, 'read');
  const touched = new Set<number>();
  try {
    const jobs = new Jobs();
    for (const s of pack.sections) {
      const n = s.blocks.length;
      const slot = await pool.acquire();
      assert(n <= slot.blocksMax && s.bodyBytes <= slot.outBytes, `pack section of ${n} blocks fits a pool slot`);
      const job = (async () => {
        const mem = pool.bytes();
        if ((await readAsync(file, mem, s.bodyPos, slot.out, s.bodyBytes)) !== s.bodyBytes) throw corrupt(pack.path, s.bodyPos, 'section cut short');
        const layout = sectionLayout(n, s.fwdBytes, s.bwdBytes, pack.forward);
        const inPack = pack.forward === FORWARD.PACK;
        // The new blocks: decoded (format 1), or the old blocks with the window's writes replayed.
        const offsets = slot.out + (inPack ? layout.fwdOffsets : layout.bwdOffsets);
        const enc = slot.out + (inPack ? layout.fwdData : layout.bwdData);
        const encLen = inPack ? s.fwdBytes : s.bwdBytes;
        const rc = (await pool.run({ kind: 'decode', enc, encLen, offsets, blockCount: n, dst: slot.newBlocks, blockSize: B, xorMode: 0 })) as number;
        if (rc !== 0) throw corrupt(pack.path, s.bodyPos, `malformed ${inPack ? 'forward' : 'backward'} encoding of block ${s.blocks[-rc - 1]}`);
        if (!inPack) await replay(ctx, slot, s, writes.get(s.volume)!, loaded!);
        await writeBlocks(ctx, slot, s);
        touched.add(s.volume);
      })().finally(() => pool.release(slot));
      jobs.add(job);
    }
    await jobs.settle();
  } finally {
    file.close();
  }
  return [...touched];
}

/** Replays the window's writes to one section's blocks over their old contents in the slot's new block region. */
async function replay(ctx: ReplicaContext, slot: Slot, s: SectionPlacement, writes: VolumeWrites, loaded: LoadedWindow): Promise<void> {
  const start = indexOfBlock(writes.blocks, s.blocks[0]);
  assert(writes.blocks[start + s.blocks.length - 1] === s.blocks[s.blocks.length - 1], `a section holds consecutive changed blocks of its window (volume ${s.volume}, from block ${s.blocks[0]})`);
  const count = await fillFragments(ctx.pool, slot, { dst: slot.newBlocks, start, count: s.blocks.length, volume: writes, loaded });
  if (count > 0) await ctx.pool.run({ kind: 'coalesce', table: slot.table, count });
}

async function writeBlocks(ctx: ReplicaContext, slot: Slot, s: SectionPlacement): Promise<void> {
  const { pool, blockSize: B } = ctx;
  const replica = ctx.volumes.byIndex(s.volume).replica;
  const fd = replica.osFd;
  if (fd !== undefined) {
    // A plain file is written by a worker, every run in one task.
    const runs: number[] = [];
    forEachRun(s.blocks, (i, block, count) => runs.push(block * B, slot.newBlocks + i * B, count * B));
    await pool.writeRuns(fd, runs);
    return;
  }
  const mem = pool.bytes();
  await slotIo((writes) => forEachRun(s.blocks, (i, block, count) => {
    const run = mem.subarray(slot.newBlocks + i * B, slot.newBlocks + (i + count) * B);
    if (run.byteLength <= SYNC_IO_BYTES_MAX) replica.write(run, block * B);
    else writes.add(writeAsync(replica, run, block * B));
  }));
}

/** Makes the replica writes of the given volumes durable. */
export async function syncReplicas(ctx: ReplicaContext, volumes: number[]): Promise<void> {
  await Promise.all(volumes.map((v) => ctx.volumes.byIndex(v).replica.sync()));
}
