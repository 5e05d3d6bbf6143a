// The read side of a store's past: resolve a target, open a point-in-time view, restore a volume to
// a file (volume-copy.ts writes the bytes; output.ts makes the file appear whole or not at all). Shared by the writer (in-process, views stay live while windows are applied) and by
// readers in other processes (the CLI while `rewind serve` runs). Status and the transaction log are
// the store's (store/status.ts).
import type { StoreConfig } from '../config.js';
import type { JournalReader } from '../journal/reader.js';
import type { Storage } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import type { Catalog } from './catalog.js';
import { PackCache } from './pack-cache.js';
import { HeldPoints } from './held-points.js';
import { describeTarget, resolveTarget, type Target } from './target.js';
import { ChangesSince, type Extent } from './diff.js';
import { PointInTimeView } from './view.js';
import { RestoreOutput } from './output.js';
import { badArgument } from '../errors.js';
import { copyVolumeAt, RESTORE_ROLLBACK_BYTES, type Progress } from './volume-copy.js';

export type { Progress } from './volume-copy.js';

export interface HistoryState {
  lastSeq(): number;
  appliedSeq(): number;
  now(): number;
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
   * Writes the volume as of the target to `outPath` (a new or existing file, replaced only once the
   * whole volume is written and synced; or a device of at least the volume's size, written in place).
   * `nearest` in the result: the target was not held, and `seq` is the nearest held point at or
   * before it (only with `opts.nearest`). A failed restore leaves no file behind (output.ts).
   */
  async restore(volume: string, target: Target, outPath: string, progress?: Progress, opts: { nearest?: boolean } = {}): Promise<{ seq: number; bytes: number; nearest: boolean }> {
    const v = this.volumes.byName(volume);
    const { seq, substituted } = this.resolvePoint(target, opts);
    const out = RestoreOutput.open(this.storage, outPath, v.size, volume);
    try {
      await this.restoreInto(volume, seq, out, progress);
      out.commit();
    } catch (err) {
      out.abandon();
      throw err;
    }
    await RestoreOutput.syncDirs(this.storage, [out]);
    return { seq, bytes: v.size, nearest: substituted };
  }

  /**
   * Writes `volume` as of the point after write `seq` (checked held, and leased while it is read)
   * into `out`, and finishes it: synced and closed, not yet put in place (`out.commit()`).
   */
  async restoreInto(volume: string, seq: number, out: RestoreOutput, progress?: Progress): Promise<void> {
    const view = this.restoreView(volume, seq);
    try {
      const ctx = { storage: this.storage, blockSize: this.config.blockSize, journal: this.journal, packs: this.packs, rollbackBytes: this.restoreRollbackBytes };
      await copyVolumeAt(ctx, view, out.file, out.sparse, progress);
      await out.finish();
    } finally {
      view.close();
    }
  }

  /**
   * A leased view of `volume` after write `seq` (checked held) for a restore or its plan: it resolves
   * the base and the journal writes and loads no pack (packsAfterTarget lists them). Close it after.
   */
  restoreView(volume: string, seq: number): PointInTimeView {
    const v = this.volumes.byName(volume);
    return this.leased({ seq }, () => new PointInTimeView(this.viewContext(), v, seq, true));
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

}
