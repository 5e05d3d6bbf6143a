// The read side of a store's past: resolve a target, open a point-in-time view, restore a volume to
// a file. Shared by the writer (in-process, views stay live while windows are applied) and by
// readers in other processes (the CLI while `rewind serve` runs). Status and the transaction log are
// the store's (store/status.ts).
import type { StoreConfig } from '../config.js';
import type { JournalReader } from '../journal/reader.js';
import { readAsync, writeAsync, type Storage, type StorageFile } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import type { Catalog } from './catalog.js';
import { PackCache } from './pack-cache.js';
import { HeldPoints } from './held-points.js';
import { describeTarget, resolveTarget, type Target } from './target.js';
import { ChangesSince, type Extent } from './diff.js';
import { PointInTimeView } from './view.js';
import { badArgument, corrupt } from '../errors.js';
import { PackStream } from './pack-stream.js';
import { BlockSet, RollbackBlocks, sectionsOf } from './rollback.js';

export interface HistoryState {
  lastSeq(): number;
  appliedSeq(): number;
  now(): number;
}

export type Progress = (doneBytes: number, totalBytes: number) => void;

/** Restore copies the replica in chunks of this size, RESTORE_DEPTH of them in flight. */
const RESTORE_CHUNK_BYTES = 8 * 2 ** 20;
const RESTORE_DEPTH = 2;
/** Largest write of consecutive rolled-back blocks (those past the memory budget). */
const RESTORE_RUN_BYTES = 2 ** 20;
/** Old blocks a restore decodes into memory before copying the replica (the rest are written after). */
const RESTORE_ROLLBACK_BYTES = 256 * 2 ** 20;
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

export class History {
  readonly packs: PackCache;
  /** The points this store holds now (retention and capacity retire the others). */
  readonly held: HeldPoints;
  /** Bytes of old blocks a restore decodes into memory before copying the replica (tests lower it to exercise the rest). */
  restoreRollbackBytes = RESTORE_ROLLBACK_BYTES;

  constructor(
    readonly storage: Storage,
    readonly config: StoreConfig,
    readonly volumes: VolumeSet,
    readonly index: TransactionIndex,
    readonly journal: JournalReader,
    readonly catalog: Catalog,
    private readonly state: HistoryState,
  ) {
    this.packs = new PackCache(storage);
    this.held = new HeldPoints({
      catalog, journal, index, createdAt: Date.parse(config.createdAt),
      appliedSeq: () => state.appliedSeq(), lastSeq: () => state.lastSeq(),
    });
  }

  /**
   * The sequence number a target stands for, when the store still holds that point; with `nearest`,
   * the nearest held point at or before it. Otherwise a TARGET_OUT_OF_RANGE error naming the oldest
   * restorable point and the nearest held ones.
   */
  resolve(target: Target, opts: { nearest?: boolean } = {}): number {
    return this.resolvePoint(target, opts).seq;
  }

  /** As resolve(), and whether the point is the nearest held one standing in for a target not held. */
  resolvePoint(target: Target, opts: { nearest?: boolean } = {}): { seq: number; substituted: boolean } {
    const resolved = resolveTarget({
      index: this.index,
      journal: this.journal,
      lastSeq: this.state.lastSeq(),
      createdAt: Date.parse(this.config.createdAt),
      now: this.state.now(),
      journalFirstSeq: this.held.journalFirstSeq(),
    }, target);
    return this.held.pick(target, resolved, opts.nearest);
  }

  /** A read-only view of `volume` after write `seq` (or at a target). */
  view(volume: string, at: number | Target): PointInTimeView {
    const v = this.volumes.byName(volume);
    const target = typeof at === 'number' ? { seq: at } : at;
    const seq = this.resolve(target);
    return this.leased(target, () => new PointInTimeView(this.viewContext(), v, seq));
  }

  /**
   * Opens a view, whose lease keeps its point from being retired, and checks that the point is still
   * held once the lease is taken: a writer in another process may have retired it after `resolve`.
   */
  private leased(target: Target, open: () => PointInTimeView): PointInTimeView {
    let view: PointInTimeView | null = null;
    try {
      view = open();
      this.held.check(target, view.seq);
      return view;
    } catch (err) {
      view?.close();
      if (!view) this.resolve(target); // not held any more: say so the usual way
      throw err;
    }
  }

  /**
   * Writes the volume as of the target to `outPath` (a new file, or an existing file or device of at
   * least the volume's size). `nearest` in the result: the target was not held, and `seq` is the
   * nearest held point at or before it (only with `opts.nearest`).
   */
  async restore(volume: string, target: Target, outPath: string, progress?: Progress, opts: { nearest?: boolean } = {}): Promise<{ seq: number; bytes: number; nearest: boolean }> {
    // The view resolves the target, the base and the journal writes; it loads no pack.
    const v = this.volumes.byName(volume);
    const { seq, substituted } = this.resolvePoint(target, opts);
    const view = this.leased({ seq }, () => new PointInTimeView(this.viewContext(), v, seq, true));
    const size = view.size;
    try {
      // 1. The old contents of the blocks to set back, decoded from the packs after the target (as
      //    many as fit the budget; see rollback.ts for why before the replica is fine).
      const done = new BlockSet();
      const stream = new PackStream(this.storage);
      const early = new RollbackBlocks(this.config.blockSize, v.size);
      let yielded = performance.now();
      for (const p of view.packsAfterTarget()) {
        if (!early.addPack(p, sectionsOf(p, this.packs, stream), v.index, done, this.restoreRollbackBytes)) break;
        if (performance.now() - yielded > 20) {
          await new Promise((r) => setImmediate(r)); // let a writer in the same process serve meanwhile
          yielded = performance.now();
        }
      }
      early.seal();
      const out = this.storage.open(outPath, 'create');
      try {
        // A regular file is rewritten sparse (zero chunks stay holes); a device is written whole.
        let sparse = true;
        try {
          out.truncate(0);
          out.truncate(size);
        } catch {
          sparse = false;
          if (out.size() < size) throw badArgument(`${outPath} holds ${out.size()} bytes; volume "${volume}" needs ${size}`);
        }
        const syncs = new WritebackKicker(out);
        try {
          // 2. The replica with those blocks patched in, chunk by chunk.
          await copyReplica(v.replica, out, size, sparse, syncs, (buf, at) => early.patch(buf, at), progress);
          // 3. The packs after the target not taken in above (past the budget, or applied since: the
          //    catalog is looked at again after the replica is read), their blocks written one run at a time.
          //    Every block is set back to its contents before the earliest window after the target that changed it.
          await this.rollBack(view, out, syncs, done, early.through, stream);
          // 4. The single journal writes from the base up to the target, in order.
          for (const w of view.journalWrites()) out.write(this.journal.payload(w), w.offset);
        } finally {
          await syncs.quiesce(); // nothing may touch `out` after it is closed
        }
        syncs.check();
        await out.sync();
      } finally {
        out.close();
      }
    } finally {
      view.close();
    }
    return { seq, bytes: size, nearest: substituted };
  }

  /**
   * The extents of `volume` written after one held point up to another, merged, in order
   * (restore/diff.ts: block-granular, from the packs' block lists and the journal, no volume read).
   * Both points are leased while it reads; a point no longer held is refused as a restore is.
   */
  diff(volume: string, from: Target, to: Target): { fromSeq: number; toSeq: number; extents: Extent[] } {
    this.volumes.byName(volume);
    const toSeq = this.resolve(to);
    const changes = this.changesSince(volume, from);
    try {
      if (changes.fromSeq > toSeq) {
        throw badArgument(`the start point ${describeTarget(from)} (seq ${changes.fromSeq}) is after the end point ${describeTarget(to)} (seq ${toSeq})`);
      }
      const release = this.catalog.lease(toSeq);
      try {
        this.held.check(to, toSeq);
        return { fromSeq: changes.fromSeq, toSeq, extents: [...changes.extents(toSeq)] };
      } finally {
        release();
      }
    } finally {
      changes.close();
    }
  }

  /** The changes of `volume` since a held point, which stays leased until the result is closed. */
  changesSince(volume: string, since: Target): ChangesSince {
    const v = this.volumes.byName(volume);
    const seq = this.resolve(since);
    const release = this.catalog.lease(seq);
    try {
      this.held.check(since, seq); // a writer in another process may have retired it meanwhile
    } catch (err) {
      release();
      throw err;
    }
    const ctx = { storage: this.storage, blockSize: this.config.blockSize, catalog: this.catalog, journal: this.journal, index: this.index };
    return new ChangesSince(ctx, v, seq, release);
  }

  private viewContext() {
    return {
      storage: this.storage,
      blockSize: this.config.blockSize,
      index: this.index,
      journal: this.journal,
      catalog: this.catalog,
      packs: this.packs,
      lastSeq: () => this.state.lastSeq(),
      appliedSeq: () => this.state.appliedSeq(),
    };
  }

  /** Step 3 of a restore: writes the old contents of every block the packs after the target change. */
  private async rollBack(view: PointInTimeView, out: StorageFile, syncs: WritebackKicker, done: BlockSet, through: number, stream: PackStream): Promise<void> {
    const B = this.config.blockSize;
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
      const sections = sectionsOf(p, this.packs, stream);
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
}
