// Bringing production to the journal when a writer opens the store: the regions production may hold
// wrongly are taken from the replica (which recovery has just brought to the applied point), then
// every journaled write after the applied point is written again.
//
// Why the regions suffice after a process crash (kill -9, same boot of the machine): every write the
// writer made reached the page cache, which the crash does not lose. A write goes to the journal
// before production, and an applied window's index entry is appended only once production holds every
// write captured before it (the apply's production barrier). So production differs from the replica
// only in the extents of the records from the last applied window on (the journal tail, all of it
// read on open) and of records cut off the journal's tail (kept in the dirty-region log before the cut).
// Copying those extents from the replica undoes whatever production got; replaying the tail redoes it.
// After a power loss (another boot) unsynced writes may have been lost in any order, a production
// write kept and its journal record lost, so every volume is rebuilt in full. A rebuild in full is
// entered in the dirty-region log before it starts, so a crash during it leads to a full one again.
import type { Journal } from '../journal/journal.js';
import type { RecordRef } from '../journal/reader.js';
import type { Storage, StorageFile } from '../storage/storage.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { addDirtyRegions, clearDirtyLog, mergeExtents, readDirtyLog, type DirtyRegions } from './dirty-regions.js';
import { copyVolumeBytes } from './init.js';

export interface RebuildContext {
  dir: string;
  storage: Storage;
  volumes: VolumeSet;
  journal: Journal;
  onWarning?: (message: string) => void;
}

/** How the last writer stopped. */
export interface LastStop {
  /** It did not close the store (a crash or a kill). */
  unclean: boolean;
  /** It ran on this boot of the machine, so everything it wrote is in the page cache still. */
  sameBoot: boolean;
}

/** What a rebuild did: every volume in full, or these many bytes of regions (for the log and the bench). */
export interface RebuildReport {
  full: boolean;
  regionBytes: number;
}

const COPY_CHUNK_BYTES = 8 * 2 ** 20;

/**
 * Brings production to the journal. `tail` is every record from the last applied window on (before
 * recovery redid any pack); `unapplied` the records after the applied point, written again in order.
 */
export async function bringProductionToJournal(ctx: RebuildContext, tail: RecordRef[], unapplied: RecordRef[], stop: LastStop): Promise<RebuildReport> {
  const { storage, dir } = ctx;
  const owed = readDirtyLog(storage, dir);
  const plan = rebuildPlan(ctx, owed, tail, stop);
  const report: RebuildReport = { full: plan?.all ?? false, regionBytes: 0 };
  if (plan?.all) {
    if (!owed?.all) await addDirtyRegions(storage, dir, { all: true, extents: [] });
    ctx.onWarning?.(`recovery: rebuilding production from the replica in full: ${plan.reason}`);
    for (const v of ctx.volumes.volumes) copyVolumeBytes(v.replica, v.production!, v.size);
  } else if (plan) {
    const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
    for (const [volume, runs] of mergeExtents(plan.extents)) {
      const v = ctx.volumes.byIndex(volume);
      for (const r of runs) report.regionBytes += copyRange(v.replica, v.production!, r.offset, r.length, buf);
    }
  }
  for (const r of unapplied) {
    const v = ctx.volumes.byIndex(r.volume);
    v.production!.write(ctx.journal.reader.payload(r), r.offset);
  }
  await Promise.all(ctx.volumes.volumes.map((v) => v.production!.sync()));
  if (owed || plan?.all) await clearDirtyLog(storage, dir);
  return report;
}

/** The regions to take from the replica, or null when production needs only the replay (a clean stop). */
function rebuildPlan(ctx: RebuildContext, owed: DirtyRegions | null, tail: RecordRef[], stop: LastStop): DirtyRegions | null {
  if (stop.unclean && !stop.sameBoot) {
    return { all: true, extents: [], reason: 'the machine restarted since the last writer stopped (a power loss may keep a production write and lose its journal record)' };
  }
  if (owed?.all) return owed;
  if (!stop.unclean && !owed) return null;
  const extents = [...(owed?.extents ?? []), ...(stop.unclean ? tail.map((r) => ({ volume: r.volume, offset: r.offset, length: r.length })) : [])];
  const bad = extents.find((e) => e.volume >= ctx.volumes.volumes.length || e.offset + e.length > ctx.volumes.byIndex(e.volume).size);
  if (bad) return { all: true, extents: [], reason: `a region to rebuild lies outside its volume (volume index ${bad.volume}, offset ${bad.offset}, ${bad.length} bytes)` };
  return { all: false, extents };
}

/** Copies [offset, offset + length) of `from` to `to`; bytes past the end of a shorter source are zeros. */
function copyRange(from: StorageFile, to: StorageFile, offset: number, length: number, buf: Buffer): number {
  for (let at = offset; at < offset + length; at += buf.byteLength) {
    const len = Math.min(buf.byteLength, offset + length - at);
    const n = from.read(buf, at, 0, len);
    if (n < len) buf.fill(0, n, len);
    to.write(buf.subarray(0, len), at);
  }
  return length;
}
