// Writing one volume as of a point into a restore's output: the old contents of the blocks the packs
// after the target change (as many as fit a memory budget, decoded first), the replica copied with
// them patched in, the rest of those blocks written after, then the journal writes up to the target.
// See rollback.ts for why setting blocks back after reading the replica is exact. The output is a
// RestoreOutput (output.ts): this module writes bytes, never renames.
import { corrupt } from '../errors.js';
import type { JournalReader } from '../journal/reader.js';
import { readAsync, writeAsync, type Storage, type StorageFile } from '../storage/storage.js';
import type { PackCache } from './pack-cache.js';
import { PackStream } from './pack-stream.js';
import { BlockSet, RollbackBlocks, sectionsOf } from './rollback.js';
import type { PointInTimeView } from './view.js';

export type Progress = (doneBytes: number, totalBytes: number) => void;

/** Restore copies the replica in chunks of this size, RESTORE_DEPTH of them in flight. */
const RESTORE_CHUNK_BYTES = 8 * 2 ** 20;
const RESTORE_DEPTH = 2;
/** Largest write of consecutive rolled-back blocks (those past the memory budget). */
const RESTORE_RUN_BYTES = 2 ** 20;
/** Old blocks a restore decodes into memory before copying the replica (the rest are written after). */
export const RESTORE_ROLLBACK_BYTES = 256 * 2 ** 20;
/** Every this many bytes written, a restore starts an fdatasync of its output without waiting, so
 *  the disk writes while the copy goes on and the final sync finds little left to do. */
const RESTORE_WRITEBACK_BYTES = 64 * 2 ** 20;

/** Starts fdatasyncs of a file being written (never more than one at a time) and keeps their failures for the end. */
class WritebackKicker {
  private pending: Promise<void> | null = null;
  private failure: unknown = null;
  private since = 0;
  constructor(private readonly file: StorageFile) {}

  wrote(bytes: number): void {
    this.since += bytes;
    if (this.since < RESTORE_WRITEBACK_BYTES || this.pending) return;
    this.since = 0;
    this.pending = this.file.sync().then(
      () => { this.pending = null; },
      (err: unknown) => { this.failure ??= err; this.pending = null; },
    );
  }

  /** Throws the failure of a sync started earlier, if one failed. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits for the sync in flight (its failure is kept for check). */
  async quiesce(): Promise<void> {
    if (this.pending) await this.pending;
  }
}

/** Copies the replica to `out` with RESTORE_DEPTH chunks in flight (read, then write, on the I/O pool). */
async function copyReplica(replica: StorageFile, out: StorageFile, size: number, sparse: boolean, syncs: WritebackKicker, patch: (buf: Buffer, at: number) => void, progress?: Progress): Promise<void> {
  const chunk = Math.min(RESTORE_CHUNK_BYTES, size);
  if (chunk === 0) return;
  const zero = Buffer.alloc(chunk);
  let next = 0;
  let done = 0;
  let failed = false;
  const lane = async (buf: Buffer) => {
    while (next < size && !failed) {
      const at = next;
      const len = Math.min(chunk, size - at);
      next += len;
      const part = buf.subarray(0, len);
      const got = await readAsync(replica, part, at, 0, len);
      if (got < len) part.fill(0, got, len);
      patch(part, at);
      if (!(sparse && part.equals(zero.subarray(0, len)))) {
        await writeAsync(out, part, at);
        syncs.wrote(len);
      }
      done += len;
      progress?.(done, size);
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < RESTORE_DEPTH && i * chunk < size; i++) {
    lanes.push(lane(Buffer.allocUnsafe(chunk)).catch((err: unknown) => {
      failed = true;
      throw err;
    }));
  }
  // Every lane finished (none still writing to `out`) before the first failure is thrown.
  const results = await Promise.allSettled(lanes);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  syncs.check();
}


export interface VolumeCopyContext {
  storage: Storage;
  blockSize: number;
  journal: JournalReader;
  packs: PackCache;
  /** Bytes of old blocks decoded into memory before the replica is copied (the rest are written after). */
  rollbackBytes: number;
}

/**
 * Writes the volume of `view` as of its point into `out` (a file at least the volume's size; `sparse`:
 * zero chunks may stay holes), and syncs nothing at the end: the caller finishes the output.
 */
export async function copyVolumeAt(ctx: VolumeCopyContext, view: PointInTimeView, out: StorageFile, sparse: boolean, progress?: Progress): Promise<void> {
  const v = view.volume;
  // 1. The old contents of the blocks to set back, decoded from the packs after the target (as
  //    many as fit the budget; see rollback.ts for why before the replica is fine).
  const done = new BlockSet();
  const stream = new PackStream(ctx.storage);
  const early = new RollbackBlocks(ctx.blockSize, v.size);
  let yielded = performance.now();
  for (const p of view.packsAfterTarget()) {
    if (!early.addPack(p, sectionsOf(p, ctx.packs, stream), v.index, done, ctx.rollbackBytes)) break;
    if (performance.now() - yielded > 20) {
      await new Promise((r) => setImmediate(r)); // let a writer in the same process serve meanwhile
      yielded = performance.now();
    }
  }
  early.seal();
  const syncs = new WritebackKicker(out);
  try {
    // 2. The replica with those blocks patched in, chunk by chunk.
    await copyReplica(v.replica, out, view.size, sparse, syncs, (buf, at) => early.patch(buf, at), progress);
    // 3. The packs after the target not taken in above (past the budget, or applied since: the
    //    catalog is looked at again after the replica is read), their blocks written one run at a time.
    //    Every block is set back to its contents before the earliest window after the target that changed it.
    await rollBack(ctx, view, out, syncs, done, early.through, stream);
    // 4. The single journal writes from the base up to the target, in order.
    for (const w of view.journalWrites()) out.write(ctx.journal.payload(w), w.offset);
  } finally {
    await syncs.quiesce(); // nothing may touch `out` after it is closed
  }
  syncs.check();
}

/** Step 3 of a restore: writes the old contents of every block the packs after the target change. */
async function rollBack(ctx: VolumeCopyContext, view: PointInTimeView, out: StorageFile, syncs: WritebackKicker, done: BlockSet, through: number, stream: PackStream): Promise<void> {
const B = ctx.blockSize;
  const vol = view.volume.index;
  const run = Buffer.allocUnsafe(Math.max(B, Math.min(RESTORE_RUN_BYTES, view.size)));
  const runBlocks = run.byteLength / B;
  let yielded = performance.now();
  for (const p of view.packsAfterTarget()) {
    if (p.lastSeq <= through) continue;
    if (performance.now() - yielded > 20) {
      await new Promise((r) => setImmediate(r)); // let a writer in the same process serve meanwhile
      yielded = performance.now();
    }
    // A pack a view has loaded already is used as it is; any other is read through one buffer.
    const sections = sectionsOf(p, ctx.packs, stream);
    for (const s of sections) {
      if (s.volume !== vol) continue;
      const blocks = s.blocks;
      // Consecutive blocks (numbers ascend in a section) not set back yet go out in one write.
      let first = -1;
      let count = 0;
      const flush = () => {
        // (the last block of a volume whose size is not a multiple of the block size is cut short)
        const len = Math.min(count * B, view.size - first * B);
        if (len > 0) out.write(run.subarray(0, len), first * B);
        syncs.wrote(len);
        count = 0;
      };
      for (let i = 0; i < blocks.length; i++) {
        const b = blocks[i];
        if (!done.add(b)) continue;
        if (count > 0 && (b !== first + count || count === runBlocks)) flush();
        if (count === 0) first = b;
        if (!s.decode(i, 'old', run, count * B, B)) throw corrupt(p.path, 0, `malformed encoding of block ${b} (volume index ${vol})`);
        count++;
      }
      flush();
    }
    syncs.check();
  }
}
