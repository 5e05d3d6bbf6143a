// The store: rewind's engine as a library. It owns a store directory and wires the data flow of the
// design: capture (journal, then production) -> window closer -> apply pipeline (pack built on the
// kernel pool and made durable, replica updated, transaction index entry). Reads of the past go
// through `history` (views, restores); `status()` and `log()` report on the store, `writeCounts()`
// counts what it captured, and a watch logs when its protection falls short.
import type { StoreConfig } from '../config.js';
import type { Clock } from '../clock.js';
import { CloneSet } from '../clones/clone-set.js';
import { closed } from '../errors.js';
import type { KernelPool } from '../increment/pool.js';
import type { Journal } from '../journal/journal.js';
import type { LifecyclePolicy } from '../lifecycle/policy.js';
import { HistoryFootprint } from '../lifecycle/footprint.js';
import type { Limits } from '../limits.js';
import type { StoreLock } from '../lock.js';
import { finishRollback, pendingRollback, type PendingRollback } from '../recovery-ops/rollback-production.js';
import { History, type Progress } from '../restore/history.js';
import { joinPath } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { Volume, VolumeSet } from '../volumes/volume-set.js';
import { ApplyPipeline } from './apply.js';
import type { HistoryLifecycle, PassResult } from './lifecycle.js';
import { writerLifecycle } from './writer-lifecycle.js';
import { Capture, type VolumeWriteCount } from './capture.js';
import { LivePolicy, type PolicyListener } from './live-policy.js';
import { limitsUnderCapacity, openWriter, type OpenedStore, type StoreOptions } from './open.js';
import { Production } from './production.js';
import { ProtectionWatch } from './protection-watch.js';
import { historyLog, type LogEntry } from './log.js';
import { statusReport, type StatusReport, type StatusSource } from './status.js';
import { writerUnapplied } from './unapplied.js';
import { WindowCloser } from './windows.js';

export type { StoreOptions, StoreLock, VolumeWriteCount };

/** How often the writer looks at the retention plan when no window is applied (history ages anyway). */
const LIFECYCLE_PASS_MS = 5000;

export class Store {
  readonly dir: string;
  readonly config: StoreConfig;
  readonly volumes: VolumeSet;
  readonly limits: Limits;
  readonly history: History;
  /** Writable clones of past points (create, list, delete; acquire one to read and write it). */
  readonly clones: CloneSet;
  private readonly clock: Clock;
  private readonly lock: StoreLock;
  private readonly index: TransactionIndex;
  private readonly journal: Journal;
  private readonly pool: KernelPool;
  private readonly state: { lastSeq(): number; lastTime(): number; appliedSeq(): number; now(): number };
  private readonly production: Production;
  private readonly pipeline: ApplyPipeline;
  private readonly windows: WindowCloser;
  private readonly capture: Capture;
  private readonly livePolicy: LivePolicy;
  private readonly statusSource: StatusSource;
  private readonly watch: ProtectionWatch;
  private readonly lifecycle: HistoryLifecycle;
  private closing = false;
  private isClosed = false;

  private constructor(o: OpenedStore) {
    this.dir = o.dir;
    this.config = o.config;
    this.volumes = o.volumes;
    this.limits = o.limits;
    this.clock = o.clock;
    this.lock = o.lock;
    this.livePolicy = new LivePolicy(o.storage, o.dir, o.config, o.onWarning);
    this.index = o.index;
    this.journal = o.journal;
    this.pool = o.pool;
    this.state = {
      lastSeq: () => this.journal.lastSeq,
      lastTime: () => this.journal.lastTime,
      appliedSeq: () => this.index.appliedSeq,
      now: () => this.clock.now(),
    };
    this.history = new History(o.storage, o.config, o.volumes, o.index, o.journal.reader, o.catalog, this.state);
    this.clones = new CloneSet({ dir: o.dir, history: this.history });
    this.production = new Production(o.volumes, o.journal.reader, o.productionWriter, o.onWarning);
    const replica = { storage: o.storage, blockSize: o.config.blockSize, volumes: o.volumes, pool: o.pool };
    this.pipeline = new ApplyPipeline({
      journal: o.journal,
      index: o.index,
      catalog: o.catalog,
      builder: { ...replica, dir: joinPath(o.dir, 'increments') },
      replica,
      // A window is entered applied only once production holds every write before it (rebuild.ts relies on it).
      redoProduction: () => this.production.barrier(),
      onApplied: () => (o.autoLifecycle ? this.lifecycle.kick() : undefined),
      onWarning: o.onWarning,
    });
    const footprint = new HistoryFootprint(o.storage, o.dir);
    this.lifecycle = writerLifecycle(o, {
      retain: () => this.policy.retain, capacityBytes: () => footprint.capacityBytes(this.config),
      cloneHolds: () => this.clones.holds(), limits: this.limits,
    });
    this.lifecycle.tidy();
    if (o.autoLifecycle) {
      this.livePolicy.onChange(() => this.lifecycle.kick());
      if (o.autoTick) this.lifecycle.every(LIFECYCLE_PASS_MS);
    }
    this.windows = new WindowCloser({
      spec: o.config.window,
      limits: o.limits,
      clock: o.clock,
      firstTxId: o.index.nextId,
      autoTick: o.autoTick,
      onTimer: () => this.tick(),
      onClosed: (w) => this.pipeline.enqueue(w),
    });
    this.capture = new Capture({
      journal: o.journal,
      clock: o.clock,
      windows: this.windows,
      production: this.production,
      pipeline: this.pipeline,
      limits: o.limits,
      checkWritable: () => this.checkWritable(),
      volumeCount: o.volumes.volumes.length,
    });
    this.livePolicy.onChange(() => {
      // Segments, windows, single writes and the lag bound follow a new capacity (open.ts limitsUnderCapacity).
      Object.assign(this.limits, limitsUnderCapacity(o.baseLimits, footprint.capacityBytes(this.config)));
    });
    this.statusSource = {
      config: () => this.config,
      volumes: o.volumes,
      index: o.index,
      state: this.state,
      catalog: o.catalog,
      footprint,
      unapplied: writerUnapplied(() => this.pipeline.queued, () => this.windows.openWindow()),
      journalFirstSeq: () => this.history.held.journalFirstSeq(),
      clones: () => this.clones.records(),
    };
    this.watch = new ProtectionWatch(o.onWarning);
    if (o.autoTick) this.watch.start(() => this.status());
  }

  /** Opens a store for writing, recovering from a crash if the last writer did not close it. */
  static async open(dir: string, opts: StoreOptions = {}): Promise<Store> {
    const found: { rollback: PendingRollback | null } = { rollback: null };
    const store = await openWriter(dir, opts, (parts, unapplied) => {
      // A rollback of production cut short: its target is leased before any window is applied.
      found.rollback = pendingRollback(parts.storage, dir, parts.catalog);
      const store = new Store(parts);
      // Re-window what was captured but not applied, within the window limits.
      for (const r of unapplied) store.windows.replay(r);
      store.windows.close(parts.clock.now());
      return store;
    });
    if (found.rollback) {
      // Finished before anyone else writes (recovery-ops/rollback-production.ts); if it cannot be, the store is not opened.
      await finishRollback(store, found.rollback, opts.onWarning).catch(async (err: unknown) => {
        await store.close().catch(() => undefined);
        throw err;
      });
    }
    return store;
  }

  /** Last sequence number written (every write up to it is in the journal and on production). */
  get lastSeq(): number {
    return this.journal.lastSeq;
  }

  /** Last sequence number applied to the replica. */
  get appliedSeq(): number {
    return this.index.appliedSeq;
  }

  /** The retention policy and capacity in effect (from rewind.json; see reloadConfig). */
  get policy(): LifecyclePolicy {
    return this.livePolicy.current;
  }

  /**
   * Reads rewind.json again and puts a changed retention or capacity into effect (true when it did).
   * Other fields are never changed on an open store, and a file that cannot be read keeps the policy
   * as it was; both are reported through `onWarning`. `rewind serve` calls this every few seconds.
   */
  reloadConfig(): boolean {
    if (this.isClosed || this.closing) return false;
    return this.livePolicy.reload();
  }

  /** Calls `listener` with the new policy after each change; returns a function that unregisters it. */
  onPolicyChange(listener: PolicyListener): () => void {
    return this.livePolicy.onChange(listener);
  }

  /**
   * Captures one write: journals it with its indicia, then writes production. Resolves with its
   * sequence number. `data` may be reused by the caller as soon as the call returns.
   */
  write(volume: string, offset: number, data: Uint8Array): Promise<number> {
    try {
      const seq = this.writeNow(volume, offset, data);
      if (seq !== null) return Promise.resolve(seq);
      return this.capture.whenRoom(this.volumes.byName(volume), offset, Buffer.from(data));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The same as write(), done before returning: the sequence number, or null when the write has to
   * wait (closed windows pending over the limit) and must go through write(). Throws what write()
   * rejects with. For callers on a hot path (the NBD server) that can skip a promise.
   */
  writeNow(volume: string, offset: number, data: Uint8Array): number | null {
    return this.capture.tryNow(this.writable(volume, offset, data), offset, data);
  }

  /**
   * The same as write() for a caller that issues many writes in one synchronous run (the NBD server,
   * one socket read): the writes are journaled together, with one vectored write, at the end of the
   * run (store/capture.ts). `data` must stay untouched until the promise settles.
   */
  writeBatched(volume: string, offset: number, data: Uint8Array): Promise<number> {
    try {
      const v = this.writable(volume, offset, data);
      return this.capture.stage(v, offset, data) ?? this.capture.whenRoom(v, offset, Buffer.from(data));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Reads production: every write captured so far, as the application sees its volume. Waits
   * (blocking, briefly) for queued production writes. Bytes past the end of a shorter file are zeros.
   */
  read(volume: string, offset: number, length: number): Buffer {
    if (this.isClosed) throw closed(`store ${this.dir}`);
    const v = this.volumes.checkedRange(volume, offset, length, this.limits.writeBytesMax);
    this.capture.commitStaged();
    return this.production.read(v, offset, length);
  }

  /**
   * Makes every write captured before the call durable (group commit), and puts it in the production
   * files. Under the marker policy, ends the window.
   */
  async flush(): Promise<void> {
    this.checkWritable();
    this.capture.commitStaged();
    if (this.windows.closesAtFlush()) this.windows.close(this.clock.now());
    // Production files hold every write captured before the flush once it returns (not durably: see
    // close). Woken now, the production thread writes them during the fsync (README, "The flushing clients").
    const queued = this.production.startQueued();
    await this.journal.flush();
    this.production.barrier(queued);
  }

  /** Ends the open window here, whatever the policy. Returns its transaction id, or null if it was empty. */
  markWindow(): number | null {
    this.checkWritable();
    this.capture.commitStaged();
    return this.windows.close(this.clock.now());
  }

  /** Closes the open window if its time is up (called by the timer, or by tests driving a manual clock). */
  tick(): void {
    if (this.isClosed || this.pipeline.failure) return;
    this.windows.tick();
  }

  /** Resolves when every closed window is applied (the replica stands at the last closed window). */
  drain(): Promise<void> {
    return this.pipeline.drain();
  }

  /** Ends the open window and waits until the replica includes every write so far. */
  async settle(): Promise<void> {
    this.markWindow();
    await this.drain();
  }

  /** The newest write, the applied point, volumes, configuration and protection (checked against the policy). */
  status(): StatusReport {
    const report = statusReport(this.statusSource);
    this.watch.note(report, this.clock.now());
    return report;
  }

  /** Writes and bytes captured per volume since this writer opened (for metrics counters). */
  writeCounts(): VolumeWriteCount[] {
    return this.capture.counts(this.volumes);
  }

  /** Bytes of packs consolidation read and wrote since this writer opened (for metrics counters). */
  consolidatedBytes(): { readBytes: number; writtenBytes: number } {
    return { ...this.lifecycle.consolidated };
  }

  /**
   * Carries out the retention policy now: consolidates, drops and retires until nothing is left to do
   * at this moment (it also runs by itself after each window and every few seconds).
   */
  consolidate(): Promise<PassResult> {
    return this.lifecycle.settle();
  }

  /** Resolves once the lifecycle pass running now has ended (a point leased before is then safe from it). */
  lifecycleIdle(): Promise<void> {
    return this.lifecycle.idle();
  }

  /** The retained points, oldest first: one per window end held, or per consolidated point (store/log.ts). */
  log(): LogEntry[] {
    return historyLog(this.history, this.policy.retain, this.clock.now());
  }

  /** Convenience: restore a volume to a file. */
  restore(volume: string, target: Parameters<History['restore']>[1], outPath: string, progress?: Progress, opts: { nearest?: boolean } = {}) {
    return this.history.restore(volume, target, outPath, progress, opts);
  }

  /** The volume a write goes to, once the store takes writes and the range is valid. */
  private writable(volume: string, offset: number, data: Uint8Array): Volume {
    this.checkWritable();
    return this.volumes.checkedRange(volume, offset, data.byteLength, this.limits.writeBytesMax);
  }

  private checkWritable(): void {
    if (this.isClosed || this.closing) throw closed(`store ${this.dir}`);
    if (this.pipeline.failure) throw this.pipeline.failure;
  }

  /** Ends the open window, applies everything, makes it all durable and releases the store. */
  async close(): Promise<void> {
    if (this.isClosed || this.closing) return;
    this.capture.commitStaged();
    this.closing = true;
    this.pipeline.stopRetrying();
    this.windows.stopTimer();
    this.watch.stop();
    let error: unknown = null;
    // A clone that cannot be flushed is the clone's problem, not the store's: reported after the close.
    let cloneError: unknown = null;
    try {
      await this.clones.closeAll();
    } catch (err) {
      cloneError = err;
    }
    try {
      if (!this.pipeline.failure) {
        this.windows.close(this.clock.now());
        await this.drain();
      }
    } catch (err) {
      error = err;
    }
    await this.pipeline.stopped();
    try {
      await this.journal.close();
      await this.production.close();
    } catch (err) {
      error ??= err;
    }
    await this.production.terminate();
    await this.lifecycle.close();
    await this.pool.close();
    this.index.close();
    this.volumes.close();
    this.isClosed = true;
    // A store left after a failure is recovered (not trusted as clean) by the next writer.
    if (!error && !this.pipeline.failure) this.lock.release();
    if (error ?? cloneError) throw error ?? cloneError;
  }

  /**
   * Stops at once, as a crash would: no window is closed, nothing is synced, the lock is kept (so the
   * next writer recovers). For tests and simulations.
   */
  async abort(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.windows.stopTimer();
    this.watch.stop();
    this.pipeline.halt(closed(`store ${this.dir}`));
    await this.clones.abandonAll();
    const lifecycle = this.lifecycle.close();
    await this.production.terminate();
    await this.pool.close();
    await lifecycle;
    for (const f of [() => this.index.close(), () => this.volumes.close(), () => this.journal.abandon()]) {
      try {
        f();
      } catch {
        // a crash does not clean up
      }
    }
  }
}
