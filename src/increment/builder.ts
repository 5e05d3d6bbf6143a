// The increment builder: turns one closed window into a pack. For every volume it finds the changed
// blocks, reads their old contents from the replica (which stands at the end of the previous
// window), and hands chunks of blocks to the kernel pool, which coalesces the window's writes into
// the new blocks, takes the CRC32C of each, and zero-run encodes the old blocks (the backward
// increment). The sections go to a temporary pack that is synced and renamed into place. The new
// blocks themselves are not stored: the window's journal records are its forward increment.
import { putU64 } from '../encoding/fields.js';
import type { Storage } from '../storage/storage.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { BLOCK_NUMBER_BYTES, FORWARD, sectionLayout } from './block-encoding.js';
import { fillFragments } from './fragments.js';
import { Jobs, slotIo } from './jobs.js';
import { PackWriter, type BuiltPack } from './pack-writer.js';
import { forEachRun, SYNC_IO_BYTES_MAX } from './sections.js';
import type { KernelPool, Slot } from './pool.js';
import type { BuildResult } from './tasks.js';
import { readAsync } from '../storage/storage.js';
import type { ClosedWindow } from '../window/closed-window.js';
import { volumeWritesOf, type VolumeWrites, type LoadedWindow } from './window-records.js';

export interface BuilderContext {
  storage: Storage;
  dir: string;
  blockSize: number;
  volumes: VolumeSet;
  pool: KernelPool;
}

export type { BuiltPack };

/** Builds window `w`'s pack from its records, loaded into the journal region (window-records.ts). */
export async function buildPack(ctx: BuilderContext, w: ClosedWindow, loaded: LoadedWindow): Promise<BuiltPack> {
  const { pool, blockSize: B } = ctx;
  const pack = new PackWriter(ctx.storage, ctx.dir, w.firstSeq, w.lastSeq);
  try {
    const jobs = new Jobs();
    for (const volume of ctx.volumes.volumes) {
      const writes = volumeWritesOf(loaded, volume.index, B);
      if (writes.records.length === 0) continue;
      const blocks = writes.blocks;
      const M = pool.slots[0].blocksMax;
      for (let c = 0; c < blocks.length; c += M) {
        const chunkBlocks = blocks.slice(c, c + M);
        const slot = await pool.acquire();
        const job = buildChunk(ctx, slot, volume.index, chunkBlocks, c, writes, loaded)
          .then((res) => pack.addSection(volume.index, chunkBlocks, res, pool.buffer(slot.out, slot.outBytes)))
          .finally(() => pool.release(slot));
        jobs.add(job);
      }
    }
    await jobs.settle();
    return await pack.finish({ t1: w.t1, t2: w.t2, blockSize: B, writes: w.records.length, bytesWritten: w.bytes, forward: FORWARD.JOURNAL });
  } catch (err) {
    pack.abort();
    throw err;
  }
}

async function buildChunk(ctx: BuilderContext, slot: Slot, volume: number, chunkBlocks: number[], chunkStart: number, writes: VolumeWrites, loaded: LoadedWindow): Promise<BuildResult> {
  const { pool, blockSize: B } = ctx;
  const n = chunkBlocks.length;
  const mem = pool.bytes();
  const replica = ctx.volumes.byIndex(volume).replica;
  // Old contents, from the replica as it stands after the previous window, read off the event loop
  // where possible. Otherwise small runs are read at once (a page-cache copy costs less than a trip
  // to the I/O pool) and big ones go to the I/O pool.
  // A plain file is read by a worker, every run in one task; otherwise here.
  const fd = replica.osFd;
  if (fd !== undefined) {
    const runs: number[] = [];
    forEachRun(chunkBlocks, (i, block, count) => runs.push(block * B, slot.oldBlocks + i * B, count * B));
    await pool.readRuns(fd, runs);
  } else {
    await slotIo((reads) => forEachRun(chunkBlocks, (i, block, count) => {
      const dst = slot.oldBlocks + i * B;
      const fill = (got: number) => {
        if (got !== count * B) mem.fill(0, dst + got, dst + count * B);
      };
      if (count * B <= SYNC_IO_BYTES_MAX) fill(replica.read(mem, block * B, dst, count * B));
      else reads.add(readAsync(replica, mem, block * B, dst, count * B).then(fill));
    }));
  }
  // Fragment table: new = old, then every write clipped to this chunk, in sequence order.
  const count = await fillFragments(pool, slot, { dst: slot.newBlocks, start: chunkStart, count: n, volume: writes, loaded }, [[slot.newBlocks, slot.oldBlocks, n * B]]);
  // Block numbers lead the section body (the worker writes the rest).
  const body = pool.buffer(slot.out, sectionLayout(n, 0, 0).fwdOffsets);
  for (let i = 0; i < n; i++) putU64(body, BLOCK_NUMBER_BYTES * i, chunkBlocks[i]);
  return (await pool.run({ kind: 'build', table: slot.table, count, blockCount: n, blockSize: B, oldBlocks: slot.oldBlocks, newBlocks: slot.newBlocks, out: slot.out })) as BuildResult;
}
