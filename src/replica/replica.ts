// The replica: the backup image of each volume, equal to production as of the last applied window.
// A window is applied by writing the new contents of its changed blocks, decoded from the forward
// increment of its pack, in block (offset) order, then syncing.
import { corrupt, assert } from '../errors.js';
import { readAsync, writeAsync, type Storage } from '../storage/storage.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { sectionLayout } from '../increment/block-encoding.js';
import { forEachRun, SYNC_IO_BYTES_MAX, type SectionPlacement } from '../increment/sections.js';
import { Jobs } from '../increment/jobs.js';
import type { KernelPool } from '../increment/pool.js';

export interface ReplicaContext {
  storage: Storage;
  blockSize: number;
  volumes: VolumeSet;
  pool: KernelPool;
}

/** Writes every section's new blocks to the replicas (not synced: see syncReplicas). Returns the volumes written. */
export async function applyForward(ctx: ReplicaContext, packPath: string, sections: SectionPlacement[]): Promise<number[]> {
  const { pool, blockSize: B } = ctx;
  const file = ctx.storage.open(packPath, 'read');
  const touched = new Set<number>();
  try {
    const jobs = new Jobs();
    for (const s of sections) {
      const n = s.blocks.length;
      const slot = await pool.acquire();
      assert(n <= slot.blocksMax && s.bodyBytes <= slot.outBytes, `pack section of ${n} blocks fits a pool slot`);
      const job = (async () => {
        const mem = pool.bytes();
        if ((await readAsync(file, mem, s.bodyPos, slot.out, s.bodyBytes)) !== s.bodyBytes) throw corrupt(packPath, s.bodyPos, 'section cut short');
        const layout = sectionLayout(n, s.fwdBytes, s.bwdBytes);
        const offsets = slot.out + layout.fwdOffsets;
        const enc = slot.out + layout.fwdData;
        const rc = (await pool.run({ kind: 'decode', enc, encLen: s.fwdBytes, offsets, blockCount: n, dst: slot.newBlocks, blockSize: B, xorMode: 0 })) as number;
        if (rc !== 0) throw corrupt(packPath, s.bodyPos, `malformed forward encoding of block ${s.blocks[-rc - 1]}`);
        const replica = ctx.volumes.byIndex(s.volume).replica;
        const fd = replica.osFd;
        if (fd !== undefined) {
          // A plain file is written by a worker, every run in one task.
          const runs: number[] = [];
          forEachRun(s.blocks, (i, block, count) => runs.push(block * B, slot.newBlocks + i * B, count * B));
          await pool.writeRuns(fd, runs);
        } else {
          const writes: Promise<void>[] = [];
          forEachRun(s.blocks, (i, block, count) => {
            const run = mem.subarray(slot.newBlocks + i * B, slot.newBlocks + (i + count) * B);
            if (run.byteLength <= SYNC_IO_BYTES_MAX) replica.write(run, block * B);
            else writes.push(writeAsync(replica, run, block * B));
          });
          await Promise.all(writes);
        }
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

/** Makes the replica writes of the given volumes durable. */
export async function syncReplicas(ctx: ReplicaContext, volumes: number[]): Promise<void> {
  await Promise.all(volumes.map((v) => ctx.volumes.byIndex(v).replica.sync()));
}
