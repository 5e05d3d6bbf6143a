// Applying closed windows: the queue of windows closed but not applied, the bytes they hold (the
// back-pressure on capture), and the loop that turns each into a durable pack, updates the replica
// and appends its transaction index entry, retrying with backoff while the disk fails transiently.
import { assert, RewindError } from '../errors.js';
import { buildPack, type BuilderContext, type BuiltPack } from '../increment/builder.js';
import type { Journal } from '../journal/journal.js';
import { applyWindow, syncReplicas, type ReplicaContext } from '../replica/replica.js';
import { loadWindowRecords } from '../increment/window-records.js';
import type { MemoryCatalog } from '../restore/catalog.js';
import type { TransactionIndex, TxEntry } from '../transactions/transactions.js';
import type { ClosedWindow } from '../window/closed-window.js';
import { ioError, isTransient } from './io-errors.js';

/** Wakes someone waiting for room (a gated write) or for the queue to empty (drain). */
type Waiter = () => void;

/** A closed window waiting to be applied; once its pack is durable, retries reuse it. */
type QueuedWindow = ClosedWindow & { built?: BuiltPack; touched?: number[] };

/** What a window's pack holds, as its transaction index entry records it. */
export interface PackSummary {
  sections: number;
  writes: number;
  changedBlocks: number;
  fwdBytes: number;
  bwdBytes: number;
  packBytes: number;
  headerCrc: number;
}

export interface ApplyContext {
  journal: Journal;
  index: TransactionIndex;
  catalog: MemoryCatalog;
  /** Where packs are built (dir: the increments directory). */
  builder: BuilderContext;
  replica: ReplicaContext;
  /** Production writes that failed are redone once a window's replica is written (see Production). */
  redoProduction(): void;
  /** Called after each window is applied (its index entry appended). */
  onApplied?: () => void;
  onWarning?: (message: string) => void;
}

const APPLY_RETRY_MS_MIN = 50;
const APPLY_RETRY_MS_MAX = 5000;

export class ApplyPipeline {
  private readonly queue: QueuedWindow[] = [];
  /** Bytes written in the queued windows. */
  private pending = 0;
  /** The latest run of the loop (close waits for it). */
  private applying: Promise<void> | null = null;
  private running = false;
  /** Which run of the loop is the latest: an older run that ends must not clear `running`. */
  private token = 0;
  /** The transient failure being retried (gated writes fail with it rather than wait). */
  private retrying: Error | null = null;
  /** The failure that stopped the store for good. */
  private failed: Error | null = null;
  /** The store is closing: a transient failure now stops the store instead of being retried. */
  private closing = false;
  /** Stopped at once (abort): no window is started or retried. */
  private halted = false;
  private roomWaiters: Waiter[] = [];
  private drainWaiters: Waiter[] = [];

  constructor(private readonly ctx: ApplyContext) {}

  get pendingBytes(): number {
    return this.pending;
  }

  /** The closed windows not yet applied, oldest first (the first may have just been applied: compare with the index). */
  get queued(): readonly ClosedWindow[] {
    return this.queue;
  }

  /** The error that stopped applying for good, if any: every later write fails with it. */
  get failure(): Error | null {
    return this.failed;
  }

  /** The transient error currently being retried, if any. */
  get retryError(): Error | null {
    return this.retrying;
  }

  /** Queues a closed window and starts applying it. */
  enqueue(w: ClosedWindow): void {
    this.queue.push(w);
    this.pending += w.bytes;
    // Start making the window's records durable now, so that fsync overlaps the windows ahead of it
    // (applying waits for it anyway; a failure stops the journal and is reported there).
    this.ctx.journal.flush().catch(() => undefined);
    this.kick();
  }

  /** Resolves at the next progress: a window applied, a retry scheduled, or a failure. */
  waitForRoom(): Promise<void> {
    return new Promise<void>((r) => this.roomWaiters.push(r));
  }

  /** Resolves when every queued window is applied; rejects with the failure that stopped applying. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) {
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => this.drainWaiters.push(r));
    }
    if (this.failed) throw this.failed;
  }

  /** The store is closing: from now on a transient failure is final. */
  stopRetrying(): void {
    this.closing = true;
  }

  /** Resolves once the latest run of the loop has ended. */
  async stopped(): Promise<void> {
    await this.applying;
  }

  /** Stops at once, as a crash would: nothing more is applied; waiters are woken and see `failure`. */
  halt(failure: Error): void {
    this.halted = true;
    this.failed ??= failure;
    this.wake();
  }

  /** Starts the apply loop unless it is running. The loop says it stopped in the same turn it decides to. */
  private kick(): void {
    if (this.running) return;
    this.running = true;
    const token = ++this.token;
    this.applying = this.run()
      .catch((err) => {
        this.failed ??= err instanceof RewindError ? err : ioError('applying windows', err);
        this.wake();
      })
      .finally(() => {
        if (this.token === token) this.running = false;
      });
  }

  /**
   * Applies queued windows in order, as a two-stage pipeline: while window k is being finished
   * (replica synced, index entry appended) window k+1 is already prepared (pack built, replica
   * written). Preparing reads the replica after window k's writes; finishing happens strictly in
   * order. A crash between the stages leaves complete packs without index entries, which recovery
   * redoes in order.
   */
  private async run(): Promise<void> {
    let backoffMs = APPLY_RETRY_MS_MIN;
    let finishing: Promise<void> = Promise.resolve();
    /** Index in the queue of the first window not yet prepared. */
    let next = 0;
    while (!this.failed && !this.halted) {
      if (next >= this.queue.length) {
        await finishing.catch(() => undefined);
        if (next < this.queue.length && !this.failed) continue;
        // Nothing left: stop in this same turn, so a window closed from now on starts a new loop.
        this.running = false;
        this.wake();
        return;
      }
      const w = this.queue[next];
      try {
        await this.prepare(w);
      } catch (err) {
        if (this.halted) break;
        const e = err instanceof RewindError ? err : ioError(`applying transaction ${w.id} (seq ${w.firstSeq}..${w.lastSeq})`, err);
        if (!isTransient(err) || this.closing || this.ctx.journal.failed) {
          this.failed ??= e;
          this.ctx.onWarning?.(e.message);
          break;
        }
        // Out of space or an I/O error: the window stays queued and is tried again (from its pack if
        // that is durable); writes go on until the pending limit, then fail with the same error.
        this.retrying = e;
        this.ctx.onWarning?.(`${e.message}; retrying in ${backoffMs} ms`);
        this.wake();
        await new Promise((r) => setTimeout(r, backoffMs).unref());
        backoffMs = Math.min(backoffMs * 2, APPLY_RETRY_MS_MAX);
        continue;
      }
      this.retrying = null;
      backoffMs = APPLY_RETRY_MS_MIN;
      next++;
      finishing = finishing.then(async () => {
        await this.finish(w);
        assert(this.queue[0] === w, `transaction ${w.id} finishes first`);
        this.queue.shift();
        next--;
        this.pending -= w.bytes;
        this.wake();
      });
      finishing.catch((err) => {
        // A failed fsync of the replica or the index: the store stops; reopening redoes from the packs.
        if (!this.failed) {
          this.failed = err instanceof RewindError ? err : ioError(`finishing transaction ${w.id} (seq ${w.firstSeq}..${w.lastSeq})`, err);
          this.ctx.onWarning?.(this.failed.message);
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
    if (this.queue.length === 0 || this.failed) {
      const d = this.drainWaiters;
      this.drainWaiters = [];
      for (const r of d) r();
    }
  }

  /**
   * Stage one: the window's journal records durable and loaded, its pack durable and in the catalog,
   * the replica written (the pack's old blocks with the records replayed over them).
   */
  private async prepare(w: QueuedWindow): Promise<void> {
    await this.ctx.journal.flush();
    // Loaded on every try: the journal region is the pool's, and holds one window's records at a time.
    const loaded = await loadWindowRecords(this.ctx.builder.pool, this.ctx.journal.reader, w);
    if (!w.built) {
      w.built = await buildPack(this.ctx.builder, w, loaded);
      this.ctx.catalog.add({ firstSeq: w.firstSeq, lastSeq: w.lastSeq, path: w.built.path });
    }
    // From here on a retry must not rebuild: the replica may be partly updated, so it redoes from the pack.
    w.touched = await applyWindow(this.ctx.replica, { path: w.built.path, forward: w.built.header.forward, sections: w.built.sections }, loaded);
    this.ctx.redoProduction();
  }

  /** Stage two, in window order: the replica synced, then the index entry that marks the window applied. */
  private async finish(w: QueuedWindow): Promise<void> {
    const built = w.built!;
    await syncReplicas(this.ctx.replica, w.touched ?? []);
    const h = built.header;
    await recordApplied(this.ctx.index, w, { sections: h.sections, writes: h.writes, changedBlocks: h.changedBlocks, fwdBytes: h.fwdBytes, bwdBytes: h.bwdBytes, packBytes: built.bytes, headerCrc: built.headerCrc });
    this.ctx.onApplied?.();
  }
}

/** Appends the index entry that marks window `w` applied (its pack durable, the replica synced). */
export async function recordApplied(index: TransactionIndex, w: ClosedWindow, p: PackSummary): Promise<void> {
  // Production is not synced here: after a crash it is rebuilt from the replica and the journal, and
  // a clean close syncs it, so its durability is never relied on between windows.
  const entry: TxEntry = {
    id: w.id, firstSeq: w.firstSeq, lastSeq: w.lastSeq, t1: w.t1, t2: w.t2, writes: p.writes, sections: p.sections,
    bytesWritten: w.bytes, changedBlocks: p.changedBlocks, packBytes: p.packBytes, fwdBytes: p.fwdBytes, bwdBytes: p.bwdBytes,
    journal: { segment: w.records[0].segment, position: w.records[0].position }, packCrc: p.headerCrc,
  };
  await index.append(entry);
}
