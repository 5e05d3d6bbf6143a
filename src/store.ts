// The store: rewind's engine as a library. It owns a store directory and runs the data flow of the
// design: capture (journal, then production) -> window scheduler -> increment builder on the kernel
// pool -> pack durable -> replica updated -> transaction index entry. Reads of the past go through
// `history` (views, restores, status, log).
import { readConfig, validateConfig, writeConfig, type StoreConfig, type VolumeConfig } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { assert, closed, corrupt, RewindError } from './errors.js';
import { buildPack, type BuiltPack, type ClosedWindow } from './increment/builder.js';
import { listPacks, packPath, readPack } from './increment/pack.js';
import { sectionPlacements } from './increment/sections.js';
import { KernelPool } from './increment/pool.js';
import { Journal } from './journal/journal.js';
import type { RecordRef } from './journal/reader.js';
import { LIMITS, type Limits } from './limits.js';
import { acquireLock, type StoreLock } from './lock.js';
import { applyForward, syncReplicas } from './replica/replica.js';
import { MemoryCatalog } from './restore/catalog.js';
import { History, type Progress } from './restore/history.js';
import { nodeStorage } from './storage/node-storage.js';
import { joinPath, type Storage } from './storage/storage.js';
import { TransactionIndex, type TxEntry } from './transactions/transactions.js';
import { parseWindowSpec } from './window/policy.js';
import { WindowScheduler } from './window/scheduler.js';
import { VolumeSet, productionPath, replicaPath, type Volume } from './volumes/volume-set.js';
import { ProductionWriter } from './volumes/production-writer.js';

export interface StoreOptions {
  storage?: Storage;
  clock?: Clock;
  /** Kernel pool workers (default: one per core). */
  threads?: number;
  limits?: Partial<Limits>;
  /** Close time-based windows on a timer (default: true with the system clock; tests call tick()). */
  autoTick?: boolean;
  onWarning?: (message: string) => void;
  /** How the writer's lock is taken (default: a pid file in the store). Simulations inject their own. */
  lock?: (dir: string) => StoreLock;
  /**
   * Write production volumes on a thread of their own (default: true). Only plain files are (the
   * storage gives their descriptor); other storage is always written on the event loop.
   */
  productionThread?: boolean;
}

export interface InitOptions {
  volumes: VolumeConfig[];
  blockSize?: number;
  window?: string;
  storage?: Storage;
  clock?: Clock;
  onProgress?: (volume: string, doneBytes: number, totalBytes: number) => void;
}

export type { StoreLock };

export const STORE_DIRS = ['journal', 'increments', 'index', 'replica', 'volumes'] as const;
const COPY_CHUNK_BYTES = 8 * 2 ** 20;

/** Creates a store directory: configuration, empty history, production volumes and their replicas. */
export async function initStore(dir: string, opts: InitOptions): Promise<StoreConfig> {
  const storage = opts.storage ?? nodeStorage;
  if (storage.exists(joinPath(dir, 'rewind.json'))) throw new RewindError('STORE_EXISTS', `${dir} is already a rewind store`);
  const config: StoreConfig = {
    format: 'rewind-store',
    version: 1,
    blockSize: opts.blockSize ?? 4096,
    window: opts.window ?? 'time:1s',
    createdAt: new Date((opts.clock ?? systemClock).now()).toISOString(),
    volumes: opts.volumes.map((v) => ({ ...v })),
  };
  for (const v of config.volumes) {
    if (v.path !== undefined && !(v.size > 0)) v.size = storage.sizeOf(v.path);
  }
  // Checks everything before the first file is made.
  validateConfig(config);
  for (const d of STORE_DIRS) storage.mkdirp(joinPath(dir, d));
  for (const v of config.volumes) {
    const replica = storage.open(replicaPath(dir, v), 'create');
    replica.truncate(0);
    replica.truncate(v.size);
    if (v.path === undefined) {
      const prod = storage.open(productionPath(dir, v), 'create');
      prod.truncate(0);
      prod.truncate(v.size);
      await prod.sync();
      prod.close();
    } else {
      // An existing volume: its current contents are the baseline the history starts from.
      const prod = storage.open(v.path, 'read');
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, v.size));
      const zero = Buffer.alloc(buf.byteLength);
      for (let at = 0; at < v.size; at += buf.byteLength) {
        const len = Math.min(buf.byteLength, v.size - at);
        const n = prod.read(buf, at, 0, len);
        if (n < len) buf.fill(0, n, len);
        if (!buf.subarray(0, len).equals(zero.subarray(0, len))) replica.write(buf.subarray(0, len), at);
        opts.onProgress?.(v.name, at + len, v.size);
      }
      prod.close();
    }
    await replica.sync();
    replica.close();
  }
  // The new files' directory entries, before the configuration makes the directory a store.
  await storage.syncDir(joinPath(dir, 'replica'));
  if (config.volumes.some((v) => v.path === undefined)) await storage.syncDir(joinPath(dir, 'volumes'));
  await writeConfig(storage, dir, config);
  return config;
}

/** Where a pending write waits when too many closed windows are not applied yet. */
type Waiter = () => void;

/** A closed window waiting to be applied; once its pack is durable, retries reuse it. */
type QueuedWindow = ClosedWindow & { built?: BuiltPack; touched?: number[] };

const APPLY_RETRY_MS_MIN = 50;
const APPLY_RETRY_MS_MAX = 5000;

function ioError(what: string, err: unknown): RewindError {
  if (err instanceof RewindError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const errno = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' ? 'ENOSPC' : 'EIO';
  return new RewindError('IO', `${what} failed: ${(err as Error)?.message ?? err}`, errno, { cause: err });
}

/** Errors worth retrying: the disk, not the data or the code. */
function isTransient(err: unknown): boolean {
  if (err instanceof RewindError) return err.code === 'IO';
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EAGAIN';
}

export class Store {
  readonly history: History;
  readonly limits: Limits;
  private readonly scheduler: WindowScheduler;
  private openRecords: RecordRef[] = [];
  private readonly queue: QueuedWindow[] = [];
  private readonly productionRedo: RecordRef[] = [];
  private applyError: Error | null = null;
  private pendingBytes = 0;
  private nextTxId: number;
  private applying: Promise<void> | null = null;
  private applyRunning = false;
  private applyToken = 0;
  private failure: Error | null = null;
  private closing = false;
  private isClosed = false;
  private timer: NodeJS.Timeout | null = null;
  private roomWaiters: Waiter[] = [];
  private drainWaiters: Waiter[] = [];
  private gate: Promise<void> = Promise.resolve();
  private gated = 0;
  /** Production writes queued for their thread (null: written on the event loop). */
  private prodWriter: ProductionWriter<RecordRef> | null = null;

  private constructor(
    readonly dir: string,
    readonly config: StoreConfig,
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly lock: StoreLock,
    readonly volumes: VolumeSet,
    private readonly index: TransactionIndex,
    private readonly journal: Journal,
    private readonly pool: KernelPool,
    private readonly catalog: MemoryCatalog,
    limits: Limits,
    private readonly autoTick: boolean,
    private readonly onWarning?: (message: string) => void,
  ) {
    this.limits = limits;
    this.scheduler = new WindowScheduler(parseWindowSpec(config.window), limits);
    this.nextTxId = index.entries.length + 1;
    this.history = new History(storage, config, volumes, index, journal.reader, catalog, {
      lastSeq: () => this.journal.lastSeq,
      lastTime: () => this.journal.lastTime,
      appliedSeq: () => this.index.appliedSeq,
      now: () => this.clock.now(),
    });
  }

  /** Opens a store for writing, recovering from a crash if the last writer did not close it. */
  static async open(dir: string, opts: StoreOptions = {}): Promise<Store> {
    const storage = opts.storage ?? nodeStorage;
    const clock = opts.clock ?? systemClock;
    const config = readConfig(storage, dir);
    const limits: Limits = { ...LIMITS, ...opts.limits };
    const lock = (opts.lock ?? acquireLock)(dir);
    const opened: { close(): void | Promise<void> }[] = [];
    try {
      const volumes = new VolumeSet(storage, dir, config, true);
      opened.push(volumes);
      const index = await TransactionIndex.open(storage, joinPath(dir, 'index'), true);
      opened.push(index);
      const tail: RecordRef[] = [];
      const journal = await Journal.open(storage, joinPath(dir, 'journal'), { segmentBytesMax: limits.segmentBytesMax, onWarning: opts.onWarning }, index.last?.journal, (r) => tail.push(r));
      opened.push({ close: () => journal.close() });
      if (journal.lastSeq < index.appliedSeq) {
        throw corrupt(joinPath(dir, 'journal'), 0, `journal ends at seq ${journal.lastSeq} but transactions are applied up to seq ${index.appliedSeq}`);
      }
      const pool = new KernelPool({ threads: opts.threads, blockSize: config.blockSize, chunkBytes: limits.chunkBytes, windowBytesMax: limits.windowBytesMax, windowWritesMax: limits.windowWritesMax });
      opened.push({ close: () => pool.close() });
      const catalog = new MemoryCatalog();
      const incDir = joinPath(dir, 'increments');
      for (const e of index.entries) catalog.add({ firstSeq: e.firstSeq, lastSeq: e.lastSeq, path: packPath(incDir, e.firstSeq, e.lastSeq) });
      const store = new Store(dir, config, storage, clock, lock, volumes, index, journal, pool, catalog, limits, opts.autoTick ?? clock === systemClock, opts.onWarning);
      await store.recover(tail, lock.unclean);
      if (opts.productionThread !== false && volumes.volumes.some((v) => v.production?.osFd !== undefined)) {
        store.prodWriter = new ProductionWriter<RecordRef>();
      }
      return store;
    } catch (err) {
      for (const o of opened.reverse()) {
        try {
          await o.close();
        } catch {
          // the original error is the one to report
        }
      }
      lock.release();
      throw err;
    }
  }

  /** Redo after a crash: finish a window whose pack was written, bring production to the journal, re-window the rest. */
  private async recover(tail: RecordRef[], unclean: boolean): Promise<void> {
    const incDir = joinPath(this.dir, 'increments');
    for (const name of this.storage.list(incDir)) if (name.endsWith('.tmp')) this.storage.remove(joinPath(incDir, name));
    for (const p of listPacks(this.storage, incDir)) {
      if (p.lastSeq <= this.index.appliedSeq) continue;
      const path = joinPath(incDir, p.name);
      const first = tail.find((r) => r.seq === p.firstSeq);
      if (p.firstSeq !== this.index.appliedSeq + 1 || p.lastSeq > this.journal.lastSeq || !first) {
        this.storage.remove(path);
        continue;
      }
      // A pack is complete once it exists (written under a temporary name); the replica may be partly updated: redo.
      const pack = readPack(this.storage, path);
      this.catalog.add({ firstSeq: p.firstSeq, lastSeq: p.lastSeq, path });
      await syncReplicas(this.replicaContext(), await applyForward(this.replicaContext(), path, sectionPlacements(pack)));
      const h = pack.header;
      await this.finishWindow({ id: this.nextTxId++, firstSeq: h.firstSeq, lastSeq: h.lastSeq, t1: h.t1, t2: h.t2, bytes: h.bytesWritten, records: [first] }, {
        sections: h.sections, writes: h.writes, changedBlocks: h.changedBlocks, fwdBytes: h.fwdBytes, bwdBytes: h.bwdBytes, packBytes: pack.bytes, headerCrc: pack.headerCrc,
      });
    }
    const applied = this.index.appliedSeq;
    const unapplied = tail.filter((r) => r.seq > applied);
    if (unclean) {
      // Production may hold writes the journal lost, or lack writes it has: rebuild it from the replica and the journal.
      for (const v of this.volumes.volumes) await copyFile(v.replica, v.production!, v.size);
    }
    for (const r of unapplied) {
      const v = this.volumes.byIndex(r.volume);
      v.production!.write(this.journal.reader.payload(r), r.offset);
    }
    await Promise.all(this.volumes.volumes.map((v) => v.production!.sync()));
    // Re-window what was captured but not applied, within the window limits.
    for (const r of unapplied) {
      if (this.scheduler.mustCloseBefore(r.length, r.time)) this.closeWindow(r.time);
      this.openRecords.push(r);
      if (this.scheduler.noteWrite(r.seq, r.length, r.time)) this.closeWindow(r.time);
    }
    this.closeWindow(this.clock.now());
  }

  private replicaContext() {
    return { storage: this.storage, blockSize: this.config.blockSize, volumes: this.volumes, pool: this.pool };
  }

  // ---- capture ----

  /** Last sequence number written (every write up to it is in the journal and on production). */
  get lastSeq(): number {
    return this.journal.lastSeq;
  }

  /** Last sequence number applied to the replica. */
  get appliedSeq(): number {
    return this.index.appliedSeq;
  }

  /**
   * Captures one write: journals it with its indicia, then writes production. Resolves with its
   * sequence number. `data` may be reused by the caller as soon as the call returns.
   */
  write(volume: string, offset: number, data: Uint8Array): Promise<number> {
    try {
      const seq = this.writeNow(volume, offset, data);
      if (seq !== null) return Promise.resolve(seq);
      return this.gatedCapture(this.volumes.byName(volume), offset, Buffer.from(data));
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
    this.checkWritable();
    const v = this.volumes.byName(volume);
    this.volumes.checkRange(v, offset, data.byteLength, this.limits.writeBytesMax);
    if (this.pendingBytes > this.limits.pendingBytesMax || this.gated > 0) return null;
    return this.capture(v, offset, data);
  }

  /** Writes wait, in order, while closed windows not yet applied hold too many bytes. */
  private async gatedCapture(v: Volume, offset: number, data: Buffer): Promise<number> {
    this.gated++;
    const prev = this.gate;
    let done!: () => void;
    this.gate = new Promise((r) => (done = r));
    try {
      await prev;
      while (this.pendingBytes > this.limits.pendingBytesMax) {
        this.checkWritable();
        if (this.applyError) throw this.applyError;
        await new Promise<void>((r) => this.roomWaiters.push(r));
      }
      this.checkWritable();
      return this.capture(v, offset, data);
    } finally {
      this.gated--;
      done();
    }
  }

  private capture(v: Volume, offset: number, data: Uint8Array): number {
    this.redoProduction();
    const now = this.clock.now();
    if (this.scheduler.mustCloseBefore(data.byteLength, now)) this.closeWindow(now);
    let ref: RecordRef;
    try {
      ref = this.journal.append(v.index, offset, data, now);
    } catch (err) {
      // Nothing was consumed: the sequence number is reused by the next write.
      throw ioError(`journaling a write to volume "${v.name}" at ${offset} (${data.byteLength} bytes)`, err);
    }
    // Journaled: the write is history from here on, whatever happens to production.
    this.openRecords.push(ref);
    if (this.scheduler.noteWrite(ref.seq, data.byteLength, ref.time)) this.closeWindow(ref.time);
    else this.armTimer();
    // Production: queued for its thread when it is a plain file, else written here once the queue is empty.
    const fd = v.production!.osFd;
    if (this.prodWriter !== null && fd !== undefined && this.prodWriter.enqueue(fd, offset, data, ref)) return ref.seq;
    try {
      this.productionBarrier();
      v.production!.write(data, offset);
    } catch (err) {
      this.productionRedo.push(ref);
      throw ioError(`writing seq ${ref.seq} to production volume "${v.name}" at ${offset}`, err);
    }
    return ref.seq;
  }

  /**
   * Reads production: every write captured so far, as the application sees its volume. Waits
   * (blocking, briefly) for queued production writes. Bytes past the end of a shorter file are zeros.
   */
  read(volume: string, offset: number, length: number): Buffer {
    if (this.isClosed) throw closed(`store ${this.dir}`);
    const v = this.volumes.byName(volume);
    this.volumes.checkRange(v, offset, length, this.limits.writeBytesMax);
    this.productionBarrier();
    const buf = Buffer.allocUnsafe(length);
    const n = v.production!.read(buf, offset, 0, length);
    if (n < length) buf.fill(0, n);
    return buf;
  }

  /** Production holds every captured write once this returns: the queue is empty and failed writes are redone. */
  private productionBarrier(): void {
    this.prodWriter?.drain();
    this.redoProduction();
  }

  /** Production writes that failed after their record was journaled are written again (from the journal) before anything else. */
  private redoProduction(): void {
    const failed = this.prodWriter?.takeFailed();
    if (failed) {
      // Queued writes the thread could not do: written again from the journal, in order, below.
      this.productionRedo.push(...failed.tags);
      this.onWarning?.(`production write of seq ${failed.tags[0].seq} failed (${failed.error.code}); writing it again from the journal`);
    }
    if (this.productionRedo.length > 0) this.prodWriter?.drain();
    while (this.productionRedo.length > 0) {
      const r = this.productionRedo[0];
      const v = this.volumes.byIndex(r.volume);
      try {
        v.production!.write(this.journal.reader.payload(r), r.offset);
      } catch (err) {
        throw ioError(`rewriting seq ${r.seq} to production volume "${v.name}" at ${r.offset}`, err);
      }
      this.productionRedo.shift();
    }
  }

  /**
   * Makes every write captured before the call durable (group commit), and puts it in the production
   * files. Under the marker policy, ends the window.
   */
  async flush(): Promise<void> {
    this.checkWritable();
    // Production files hold every write captured so far once a flush returns (not durably: see close).
    this.productionBarrier();
    if (this.scheduler.closesAtFlush()) this.closeWindow(this.clock.now());
    await this.journal.flush();
  }

  /** Ends the open window here, whatever the policy. Returns its transaction id, or null if it was empty. */
  markWindow(): number | null {
    this.checkWritable();
    return this.closeWindow(this.clock.now());
  }

  /** Closes the open window if its time is up (called by the timer, or by tests driving a manual clock). */
  tick(): void {
    if (this.isClosed || this.failure) return;
    if (this.scheduler.isDue(this.clock.now())) this.closeWindow(this.clock.now());
    else this.armTimer();
  }

  /** Resolves when every closed window is applied (the replica stands at the last closed window). */
  async drain(): Promise<void> {
    while (this.queue.length > 0) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => this.drainWaiters.push(r));
    }
    if (this.failure) throw this.failure;
  }

  /** Ends the open window and waits until the replica includes every write so far. */
  async settle(): Promise<void> {
    this.markWindow();
    await this.drain();
  }

  private armTimer(): void {
    if (!this.autoTick || this.timer) return;
    const deadline = this.scheduler.nextDeadline();
    if (!Number.isFinite(deadline)) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tick();
    }, Math.max(1, deadline - this.clock.now()));
    this.timer.unref();
  }

  private closeWindow(now: number): number | null {
    const w = this.scheduler.close(now);
    if (!w) return null;
    assert(this.openRecords.length === w.writes, `window holds ${w.writes} writes`);
    const cw: ClosedWindow = { id: this.nextTxId++, firstSeq: w.firstSeq, lastSeq: w.lastSeq, t1: w.t1, t2: w.t2, bytes: w.bytes, records: this.openRecords };
    this.openRecords = [];
    this.queue.push(cw);
    this.pendingBytes += cw.bytes;
    // Start making the window's records durable now, so that fsync overlaps the windows ahead of it
    // (applying waits for it anyway; a failure stops the journal and is reported there).
    this.journal.flush().catch(() => undefined);
    this.kickApply();
    return cw.id;
  }

  // ---- apply ----

  /**
   * Applies queued windows in order, as a two-stage pipeline: while window k is being finished
   * (replica synced, index entry appended) window k+1 is already prepared (pack built, replica
   * written). Preparing reads the replica after window k's writes; finishing happens strictly in
   * order. A crash between the stages leaves complete packs without index entries, which recovery
   * redoes in order.
   */
  /** Starts the apply loop unless it is running. The loop says it stopped in the same turn it decides to. */
  private kickApply(): void {
    if (this.applyRunning) return;
    this.applyRunning = true;
    const token = ++this.applyToken;
    this.applying = this.applyWindows()
      .catch((err) => {
        this.failure ??= err instanceof RewindError ? err : ioError('applying windows', err);
        this.wake();
      })
      .finally(() => {
        if (this.applyToken === token) this.applyRunning = false;
      });
  }

  private async applyWindows(): Promise<void> {
    let backoffMs = APPLY_RETRY_MS_MIN;
    let finishing: Promise<void> = Promise.resolve();
    /** Index in the queue of the first window not yet prepared. */
    let next = 0;
    while (!this.failure && !this.isClosed) {
      if (next >= this.queue.length) {
        await finishing.catch(() => undefined);
        if (next < this.queue.length && !this.failure) continue;
        // Nothing left: stop in this same turn, so a window closed from now on starts a new loop.
        this.applyRunning = false;
        this.wake();
        return;
      }
      const w = this.queue[next];
      try {
        await this.prepareWindow(w);
      } catch (err) {
        if (this.isClosed) break;
        const e = err instanceof RewindError ? err : ioError(`applying transaction ${w.id} (seq ${w.firstSeq}..${w.lastSeq})`, err);
        if (!isTransient(err) || this.closing || this.journal.failed) {
          this.failure ??= e;
          this.onWarning?.(e.message);
          break;
        }
        // Out of space or an I/O error: the window stays queued and is tried again (from its pack if
        // that is durable); writes go on until the pending limit, then fail with the same error.
        this.applyError = e;
        this.onWarning?.(`${e.message}; retrying in ${backoffMs} ms`);
        this.wake();
        await new Promise((r) => setTimeout(r, backoffMs).unref());
        backoffMs = Math.min(backoffMs * 2, APPLY_RETRY_MS_MAX);
        continue;
      }
      this.applyError = null;
      backoffMs = APPLY_RETRY_MS_MIN;
      next++;
      finishing = finishing.then(async () => {
        await this.finishPreparedWindow(w);
        assert(this.queue[0] === w, `transaction ${w.id} finishes first`);
        this.queue.shift();
        next--;
        this.pendingBytes -= w.bytes;
        this.wake();
      });
      finishing.catch((err) => {
        // A failed fsync of the replica or the index: the store stops; reopening redoes from the packs.
        if (!this.failure) {
          this.failure = err instanceof RewindError ? err : ioError(`finishing transaction ${w.id} (seq ${w.firstSeq}..${w.lastSeq})`, err);
          this.onWarning?.(this.failure.message);
        }
        this.wake();
      });
    }
    await finishing.catch(() => undefined);
    this.wake();
  }

  private wake(): void {
    const room = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of room) r();
    if (this.queue.length === 0 || this.failure) {
      const d = this.drainWaiters;
      this.drainWaiters = [];
      for (const r of d) r();
    }
  }

  /** Stage one: the window's journal records durable, its pack durable and in the catalog, the replica written. */
  private async prepareWindow(w: QueuedWindow): Promise<void> {
    await this.journal.flush();
    if (!w.built) {
      w.built = await buildPack({ storage: this.storage, dir: joinPath(this.dir, 'increments'), blockSize: this.config.blockSize, volumes: this.volumes, journal: this.journal.reader, pool: this.pool }, w);
      this.catalog.add({ firstSeq: w.firstSeq, lastSeq: w.lastSeq, path: w.built.path });
    }
    // From here on a retry must not rebuild: the replica may be partly updated, so it redoes from the pack.
    w.touched = await applyForward(this.replicaContext(), w.built.path, w.built.sections);
    this.redoProduction();
  }

  /** Stage two, in window order: the replica synced, then the index entry that marks the window applied. */
  private async finishPreparedWindow(w: QueuedWindow): Promise<void> {
    const built = w.built!;
    await syncReplicas(this.replicaContext(), w.touched ?? []);
    const h = built.header;
    await this.finishWindow(w, { sections: h.sections, writes: h.writes, changedBlocks: h.changedBlocks, fwdBytes: h.fwdBytes, bwdBytes: h.bwdBytes, packBytes: built.bytes, headerCrc: built.headerCrc });
  }

  private async finishWindow(w: ClosedWindow, p: { sections: number; writes: number; changedBlocks: number; fwdBytes: number; bwdBytes: number; packBytes: number; headerCrc: number }): Promise<void> {
    // Production is not synced here: after a crash it is rebuilt from the replica and the journal, and
    // a clean close syncs it, so its durability is never relied on between windows.
    const entry: TxEntry = {
      id: w.id, firstSeq: w.firstSeq, lastSeq: w.lastSeq, t1: w.t1, t2: w.t2, writes: p.writes, sections: p.sections,
      bytesWritten: w.bytes, changedBlocks: p.changedBlocks, packBytes: p.packBytes, fwdBytes: p.fwdBytes, bwdBytes: p.bwdBytes,
      journal: { segment: w.records[0].segment, position: w.records[0].position }, packCrc: p.headerCrc,
    };
    await this.index.append(entry);
  }

  // ---- lifecycle ----

  private checkWritable(): void {
    if (this.isClosed || this.closing) throw closed(`store ${this.dir}`);
    if (this.failure) throw this.failure;
  }

  /** Ends the open window, applies everything, makes it all durable and releases the store. */
  async close(): Promise<void> {
    if (this.isClosed || this.closing) return;
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    let error: unknown = null;
    try {
      if (!this.failure) {
        this.closeWindow(this.clock.now());
        await this.drain();
      }
    } catch (err) {
      error = err;
    }
    await this.applying;
    try {
      await this.journal.close();
      this.productionBarrier();
      await this.prodWriter?.close();
      await Promise.all(this.volumes.volumes.map((v) => v.production!.sync()));
    } catch (err) {
      error ??= err;
    }
    await this.prodWriter?.terminate();
    await this.pool.close();
    this.index.close();
    this.volumes.close();
    this.isClosed = true;
    // A store left after a failure is recovered (not trusted as clean) by the next writer.
    if (!error && !this.failure) this.lock.release();
    if (error) throw error;
  }

  /**
   * Stops at once, as a crash would: no window is closed, nothing is synced, the lock is kept (so the
   * next writer recovers). For tests and simulations.
   */
  async abort(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.timer) clearTimeout(this.timer);
    this.failure ??= closed(`store ${this.dir}`);
    this.wake();
    await this.prodWriter?.terminate();
    await this.pool.close();
    for (const f of [() => this.index.close(), () => this.volumes.close(), () => this.journal.abandon()]) {
      try {
        f();
      } catch {
        // a crash does not clean up
      }
    }
  }

  /** Convenience: restore a volume to a file. */
  restore(volume: string, target: Parameters<History['restore']>[1], outPath: string, progress?: Progress) {
    return this.history.restore(volume, target, outPath, progress);
  }
}

async function copyFile(from: { read: Volume['replica']['read'] }, to: Volume['replica'], size: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, size));
  for (let at = 0; at < size; at += buf.byteLength) {
    const len = Math.min(buf.byteLength, size - at);
    const n = from.read(buf, at, 0, len);
    if (n < len) buf.fill(0, n, len);
    to.write(buf.subarray(0, len), at);
  }
}
