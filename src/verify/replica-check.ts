// Verify's replica check: each block of each replica equals what the newest pack that changed it
// says it became: the CRC32C of its new contents (a pack of format 2; a merged pack carries the
// newest window's), or its decoded forward encoding (format 1). Blocks whose newest window was
// dropped by retention cannot be checked and are not.
import { listPacks, readPack, type Pack } from '../increment/pack.js';
import { FORWARD } from '../increment/block-encoding.js';
import { crc32c } from '../encoding/fields.js';
import { joinPath, type Storage } from '../storage/storage.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import type { ReplicaPack } from './pack-check.js';
import type { Findings } from './report.js';

export interface ReplicaCheckContext {
  storage: Storage;
  /** The increments directory. */
  dir: string;
  blockSize: number;
  volumes: VolumeSet;
  /** A writer is running: the replica may have moved past the packs listed. */
  writerActive: boolean;
  /** The last seq of the packs listed. */
  listedLast: number;
}

/** `packs` in seq order. */
export function checkReplica(ctx: ReplicaCheckContext, packs: readonly ReplicaPack[], found: Findings): void {
  const B = ctx.blockSize;
  const old = Buffer.allocUnsafe(B);
  const actual = Buffer.allocUnsafe(B);
  for (const v of ctx.volumes.volumes) {
    const seen = new Set<number>();
    for (let i = packs.length - 1; i >= 0; i--) {
      const { pack, applied } = packs[i];
      for (const block of pack.blocksOf(v.index).keys()) {
        if (seen.has(block)) continue;
        seen.add(block);
        try {
          const n = v.replica.read(actual, block * B);
          if (n < B) actual.fill(0, n);
          if (isNew(pack, v.index, block, actual, old)) {
            found.checked.replicaBlocks++;
            continue;
          }
          if (!applied && matchesUnapplied(packs, i, v.index, block, actual, old)) {
            found.checked.replicaBlocks++;
            continue;
          }
          if (ctx.writerActive && movedOn(ctx.storage, ctx.dir, ctx.listedLast, v.index, block)) continue;
          found.checked.replicaBlocks++;
          found.damage(v.replicaPath, block * B, `replica block ${block} of volume "${v.name}" differs from the window that last wrote it (${pack.path})`);
        } catch (err) {
          found.fail(err, pack.path);
        }
      }
    }
  }
}

/**
 * Did a window applied after the listing (by a running writer) change this block? Its pack may
 * already be merged with older ones, so any pack reaching past the listing counts.
 */
function movedOn(storage: Storage, dir: string, listedLast: number, volume: number, block: number): boolean {
  for (const f of listPacks(storage, dir)) {
    if (f.lastSeq <= listedLast) continue;
    try {
      if (readPack(storage, joinPath(dir, f.name)).blocksOf(volume).has(block)) return true;
    } catch {
      // a pack being written, or consolidated away meanwhile, is not damage
    }
  }
  return false;
}

/**
 * A block whose newest window is not applied yet may hold, in the replica, the contents before or
 * after any not-yet-applied window that touched it (replica writes of those windows may or may not
 * have happened, or reached the disk before a crash).
 */
function matchesUnapplied(packs: readonly ReplicaPack[], newest: number, volume: number, block: number, actual: Buffer, scratch: Buffer): boolean {
  for (let i = newest; i >= 0 && !packs[i].applied; i--) {
    const p: Pack = packs[i].pack;
    if (!p.blocksOf(volume).has(block)) continue;
    if (isNew(p, volume, block, actual, scratch)) return true;
    p.decode(volume, block, 'old', scratch, 0);
    if (actual.equals(scratch)) return true;
  }
  return false;
}

/** Are `actual` the contents pack `p` left block `block` of `volume` with? */
function isNew(p: Pack, volume: number, block: number, actual: Buffer, scratch: Buffer): boolean {
  if (p.header.forward !== FORWARD.PACK) return crc32c(actual) === p.newCrc(volume, block);
  p.decode(volume, block, 'new', scratch, 0);
  return actual.equals(scratch);
}
