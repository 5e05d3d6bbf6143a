// The history lifecycle of a writer: carries out the retention plan in the background, one step at a
// time, while windows keep being applied — merges runs of packs inside one period of one tier, drops
// the oldest packs past the policy's horizon, and retires journal segments whose single writes are no
// longer promised.
//
// Every step follows one order: the new file is written, synced, renamed and its directory synced
// (PackWriter); then the catalog changes (new readers use the new set); then the old files are removed
// and the directory synced. A crash before the rename leaves a temporary file (removed on open); after
// it, the merged pack and the packs it replaces (on open the replaced ones are superseded and removed,
// src/lifecycle/held.ts chainOf): the old set or the new set, never a point lost or counted twice.
// Dropping removes the oldest pack first, so a crash in the middle leaves a shorter chain, still whole.
// After drops, the transaction index is compacted: the entries of windows before the oldest point
// held go, in the same order (src/transactions/transactions.ts compact()).
//
// Leases: a point a view or restore is reading is never consolidated away or dropped; the journal
// segments it needs are kept. Such steps wait for a later pass. A clone's point is held the same way
// for as long as the clone exists (src/lifecycle/holds.ts); a log line says when that keeps history
// the policy would retire.
// The hold (ctx.hold) works the same way for files the second tier has not shipped yet.
import type { Clock } from '../clock.js';
import type { HistoryFootprint } from '../lifecycle/footprint.js';
import { readSectionTable } from '../increment/pack-sections.js';
import type { KernelPool } from '../increment/pool.js';
import type { Journal } from '../journal/journal.js';
import { mergePacks, mergeStep } from '../lifecycle/merge.js';
import { holdsPastPolicy, type PointHold } from '../lifecycle/holds.js';
import { heldPacks, planRetention, type RetentionPolicy } from '../lifecycle/retention.js';
import type { MemoryCatalog, PackRef } from '../restore/catalog.js';
import type { Storage } from '../storage/storage.js';
import type { HistoryHold } from './open.js';
import type { TransactionIndex } from '../transactions/transactions.js';

export interface LifecycleContext {
  storage: Storage;
  incrementsDir: string;
  journalDir: string;
  blockSize: number;
  pool: KernelPool;
  catalog: MemoryCatalog;
  index: TransactionIndex;
  journal: Journal;
  clock: Clock;
  retention(): RetentionPolicy;
  /** The capacity in bytes (null: none), and how history is measured against it. */
  capacityBytes(): number | null;
  footprint: HistoryFootprint;
  /** Points leased by readers in other processes (src/lifecycle/leases.ts). */
  externalLeases(): number[];
  /** Points clones hold until they are deleted (durable holds, read from their records each time). */
  cloneHolds(): PointHold[];
  /** Files the second tier has not shipped yet, which stay (src/store/open.ts HistoryHold). */
  hold(): HistoryHold;
  /** Bytes kept free below the capacity for what comes next (the next window's pack, a segment). */
  headroomBytes(capacity: number): number;
  /** The index is rewritten once at least this many of its entries (and a quarter) are of retired windows. */
  indexCompactEntriesMin: number;
  onWarning?: (message: string) => void;
}

/**
 * Pack bytes one merge step reads at most (at least two packs are merged whatever their size): a bound
 * on one step's time, so a pass gets back to drops and the capacity; memory does not depend on it (a
 * merge streams its packs a section at a time).
 */
export const MERGE_READ_BYTES_MAX = 256 * 2 ** 20;
/** How long history must fit the policy again before the lifecycle says it does. */
const OVER_POLICY_QUIET_MS = 60_000;
/** Steps one pass takes at most before it yields (a pass resumes where the plan says). */
const PASS_STEPS_MAX = 10_000;

export interface PassResult {
  merged: number;
  dropped: number;
  segmentsRetired: number;
  /** Entries of retired windows taken out of the transaction index. */
  indexEntriesRemoved: number;
}

/** Where history stands against the capacity after a pass. */
export interface CapacityState {
  historyBytes: number;
  capacityBytes: number | null;
  /** History had to be retired beyond the policy (its promise is not kept in full). */
  overPolicy: boolean;
  /** Even retiring everything that may go leaves history over the capacity. */
  overCapacity: boolean;
}

export class HistoryLifecycle {
  private running: Promise<PassResult> | null = null;
  /** The capacity made this pass retire history before the policy says; when it last did. */
  private passOverPolicy = false;
  /** History bytes as the last capacity step measured them. */
  private measuredBytes = 0;
  private overPolicyAt = -Infinity;
  /** The clones that kept history past the policy at the end of the last pass (names, sorted). */
  private holdingPastPolicy = '';
  /** Packs a merge replaced, kept while a reader in another process may read them. */
  private deferred: PackRef[] = [];
  private timer: NodeJS.Timeout | null = null;
  private again = false;
  private stopped = false;
  /** After the last pass. */
  capacity: CapacityState = { historyBytes: 0, capacityBytes: null, overPolicy: false, overCapacity: false };
  /** Totals since open. */
  readonly totals: PassResult = { merged: 0, dropped: 0, segmentsRetired: 0, indexEntriesRemoved: 0 };
  /** Bytes of packs merges read and wrote since open (the consolidation rate, for metrics and the bench). */
  readonly consolidated = { readBytes: 0, writtenBytes: 0 };

  /** `superseded`: packs a merge replaced before the last writer stopped, to be removed like deferred ones. */
  constructor(private readonly ctx: LifecycleContext, superseded: readonly PackRef[] = []) {
    this.deferred.push(...superseded);
  }

  /** Starts a pass in the background unless one runs (then it runs once more after it). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err) => {
        // History is left as it was at the failed step (see the order above); the next pass retries.
        this.ctx.onWarning?.(`history lifecycle: ${(err as Error).message}`);
        return { merged: 0, dropped: 0, segmentsRetired: 0, indexEntriesRemoved: 0 };
      })
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * Removes, in the background, packs a merge replaced that no reader may read any more (left by the
   * last writer, say), without looking at the plan. close() waits for it.
   */
  tidy(): void {
    if (this.stopped || this.running || this.deferred.length === 0) return;
    const none: PassResult = { merged: 0, dropped: 0, segmentsRetired: 0, indexEntriesRemoved: 0 };
    this.running = this.removeDeferred()
      .then(() => none, (err) => {
        this.ctx.onWarning?.(`history lifecycle: ${(err as Error).message}`);
        return none;
      })
      .finally(() => (this.running = null));
  }

  /** Runs passes until the plan has nothing left to do now; resolves with what they did. */
  async settle(): Promise<PassResult> {
    const sum: PassResult = { merged: 0, dropped: 0, segmentsRetired: 0, indexEntriesRemoved: 0 };
    for (;;) {
      if (this.running) await this.running;
      const r = await (this.running = this.pass().finally(() => (this.running = null)));
      sum.merged += r.merged;
      sum.dropped += r.dropped;
      sum.segmentsRetired += r.segmentsRetired;
      sum.indexEntriesRemoved += r.indexEntriesRemoved;
      if (r.merged + r.dropped + r.segmentsRetired === 0) return sum;
    }
  }

  /** Also runs a pass every `ms` (history ages even when nothing is written). */
  every(ms: number): void {
    this.timer ??= setInterval(() => this.kick(), ms);
    this.timer.unref();
  }

  /**
   * Resolves once the pass running now (if any) has ended. Every step of a pass looks at the leases
   * first, so a point leased before this call is safe from every step after it resolves.
   */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Stops starting passes and waits for the one running. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.idle();
  }

  /** One pass: drops, then merges one run at a time, then retires journal segments. */
  private async pass(): Promise<PassResult> {
    const done: PassResult = { merged: 0, dropped: 0, segmentsRetired: 0, indexEntriesRemoved: 0 };
    await this.removeDeferred();
    // Cheap steps that free space first (drops, the journal, the capacity), then one merge at a time,
    // looking at them all again after each: under sustained writes merges never starve the others.
    for (let step = 0; step < PASS_STEPS_MAX && !this.stopped; step++) {
      const packs = this.appliedPacks();
      const plan = planRetention(this.ctx.retention(), this.ctx.clock.now(), heldPacks(packs, this.ctx.index.entries));
      const drop = this.droppable(packs, plan.drop);
      if (drop > 0) {
        await this.dropOldest(drop);
        done.dropped += drop;
        continue;
      }
      done.segmentsRetired += await this.retireSegments(plan.journalFromSeq, packs);
      const dropped = done.dropped;
      await this.enforceCapacity(done);
      if (done.dropped !== dropped) continue; // the packs changed: plan again before merging
      const hold = this.ctx.hold().packsFrom;
      const run = plan.merges.find((m) => packs[m.to].lastSeq < hold && !this.leasedInside(packs[m.from].firstSeq - 1, packs[m.to].lastSeq));
      if (!run) break;
      await this.merge(packs.slice(run.from, run.to + 1));
      done.merged++;
    }
    if (!this.stopped) done.indexEntriesRemoved = await this.compactIndex();
    this.reportCapacity();
    this.reportHolds();
    for (const k of ['merged', 'dropped', 'segmentsRetired', 'indexEntriesRemoved'] as const) this.totals[k] += done[k];
    return done;
  }

  /**
   * Keeps history under the capacity, ahead of need: while it holds more than the capacity less the
   * headroom, the oldest pack goes (the coarsest history first), with the journal only it needed;
   * with no pack left to drop, the oldest journal segments of applied windows go too. Writes never
   * wait for this: capture is bounded by the replica-lag limit, which the capacity bounds in turn.
   */
  private async enforceCapacity(done: PassResult): Promise<void> {
    const cap = this.ctx.capacityBytes();
    // Without a capacity there is nothing to measure history against: no directory walk per pass.
    if (cap === null) return;
    let bytes = (this.measuredBytes = this.ctx.footprint.historyBytes(true));
    const target = cap - this.ctx.headroomBytes(cap);
    for (let step = 0; step < PASS_STEPS_MAX && bytes > target && !this.stopped; step++) {
      const packs = this.appliedPacks();
      if (packs.length > 0 && this.droppable(packs, 1) === 1) {
        await this.dropOldest(1);
        done.dropped++;
        // The journal of the dropped window can no longer be replayed from anything: it goes too.
        done.segmentsRetired += await this.retireSegments(packs.length > 1 ? packs[1].firstSeq : Infinity, packs.slice(1));
      } else {
        const removed = await this.retireSegments(Infinity, packs);
        if (removed === 0) break;
        done.segmentsRetired += removed;
      }
      this.passOverPolicy = true;
      bytes = this.measuredBytes = this.ctx.footprint.historyBytes(true);
    }
  }

  /** Where history stands against the capacity at the end of a pass; says so when that changes. */
  private reportCapacity(): void {
    const cap = this.ctx.capacityBytes();
    // As enforceCapacity last measured it (0 without a capacity: not measured).
    const bytes = cap === null ? 0 : this.measuredBytes;
    const overCapacity = cap !== null && bytes > cap;
    const now = this.ctx.clock.now();
    if (this.passOverPolicy) this.overPolicyAt = now;
    // Over the policy until a minute has gone by without retiring early (no line for every pass).
    const overPolicy = this.passOverPolicy || (this.capacity.overPolicy && now - this.overPolicyAt < OVER_POLICY_QUIET_MS);
    this.passOverPolicy = false;
    if (overCapacity && !this.capacity.overCapacity) {
      this.ctx.onWarning?.(`history holds ${bytes} bytes, over the capacity of ${cap}: what is left is the journal of windows not yet applied and what recovery needs; it shrinks as they are applied`);
    }
    if (overPolicy && !this.capacity.overPolicy) {
      this.ctx.onWarning?.(`capacity ${cap} bytes: the oldest history is being retired before the retention policy says, to stay under it; protection is below what the policy requires`);
    }
    if (!overPolicy && this.capacity.overPolicy) this.ctx.onWarning?.(`capacity ${cap} bytes: history fits again as the retention policy says`);
    this.capacity = { historyBytes: bytes, capacityBytes: cap, overPolicy, overCapacity };
  }

  /** Says when clones start (or stop) keeping history the policy would retire. */
  private reportHolds(): void {
    const packs = this.appliedPacks();
    const plan = planRetention(this.ctx.retention(), this.ctx.clock.now(), heldPacks(packs, this.ctx.index.entries));
    const past = holdsPastPolicy(this.ctx.cloneHolds(), plan, packs, this.ctx.index.appliedSeq);
    const key = past.map((h) => `${h.name} (seq ${h.seq})`).sort().join(', ');
    if (key === this.holdingPastPolicy) return;
    if (key !== '') this.ctx.onWarning?.(`clones keep history the retention policy would retire: ${key}; it is kept until they are deleted (rewind clone delete)`);
    else this.ctx.onWarning?.('no clone keeps history past the retention policy any more');
    this.holdingPastPolicy = key;
  }

  /**
   * Takes the entries of windows before the oldest point held out of the index (when enough have
   * gathered). That point is the end of a window whose entry stays; leases never reach before it.
   */
  private async compactIndex(): Promise<number> {
    const packs = this.appliedPacks();
    const oldest = packs.length > 0 ? packs[0].firstSeq - 1 : this.ctx.index.appliedSeq;
    return this.ctx.index.compact(oldest, this.ctx.indexCompactEntriesMin);
  }

  /** The catalog's packs of applied windows (a pack being applied is not the lifecycle's yet). */
  private appliedPacks(): PackRef[] {
    const applied = this.ctx.index.appliedSeq;
    return this.ctx.catalog.packs().filter((p) => p.lastSeq <= applied);
  }

  /** How many of the `wanted` oldest packs can go without taking a leased point away. */
  private droppable(packs: PackRef[], wanted: number): number {
    const lease = Math.min(Infinity, ...this.leasedPoints());
    const hold = this.ctx.hold().packsFrom;
    let n = wanted;
    // Dropping n packs makes the point before pack n the oldest held one; a held pack stays.
    while (n > 0 && ((n < packs.length ? packs[n].firstSeq - 1 : this.ctx.index.appliedSeq) > lease || packs[n - 1].lastSeq >= hold)) n--;
    return n;
  }

  /** Every leased point, in this process and in readers' lease files, and every clone's point, read now. */
  private leasedPoints(): number[] {
    return [...this.ctx.catalog.leasedPoints(), ...this.ctx.externalLeases(), ...this.ctx.cloneHolds().map((h) => h.seq)];
  }

  /** True when a leased point lies strictly between two held points (a merge would take it away). */
  private leasedInside(fromPoint: number, toPoint: number): boolean {
    return this.leasedPoints().some((seq) => seq > fromPoint && seq < toPoint);
  }

  private async dropOldest(count: number): Promise<void> {
    const dropped = this.ctx.catalog.dropOldest(count);
    // Oldest first: a crash in between leaves a shorter chain, still whole.
    for (const p of dropped) this.ctx.storage.remove(p.path);
    await this.ctx.storage.syncDir(this.ctx.incrementsDir);
  }

  private async merge(run: PackRef[]): Promise<void> {
    const { from, to, bytes } = mergeStep(run.map((p) => this.ctx.storage.sizeOf(p.path)), MERGE_READ_BYTES_MAX);
    const pieces = run.slice(from, to + 1);
    const packs = pieces.map((p) => readSectionTable(this.ctx.storage, p.path));
    const built = await mergePacks({ storage: this.ctx.storage, dir: this.ctx.incrementsDir, blockSize: this.ctx.blockSize, pool: this.ctx.pool }, packs);
    const replaced = this.ctx.catalog.replace({ firstSeq: built.header.firstSeq, lastSeq: built.header.lastSeq, path: built.path });
    // A reader in another process that leased a point before them may be reading the replaced packs
    // (it listed the directory before the merged one was there): they stay until it is done.
    this.deferred.push(...replaced);
    this.consolidated.readBytes += bytes;
    this.consolidated.writtenBytes += built.bytes;
    await this.removeDeferred();
  }

  /** Removes replaced packs no reader in another process may still be reading. */
  private async removeDeferred(): Promise<void> {
    if (this.deferred.length === 0) return;
    const external = this.ctx.externalLeases();
    const keep: PackRef[] = [];
    let removed = 0;
    for (const p of this.deferred) {
      if (external.some((seq) => seq < p.lastSeq)) keep.push(p);
      else {
        this.ctx.storage.remove(p.path);
        removed++;
      }
    }
    this.deferred = keep;
    if (removed > 0) await this.ctx.storage.syncDir(this.ctx.incrementsDir);
  }

  /**
   * Removes sealed journal segments that hold only writes the policy no longer promises one by one,
   * keeping what recovery starts from (the last applied window's records), what is not applied yet,
   * and what a leased point needs.
   */
  private async retireSegments(journalFromSeq: number, packs: PackRef[]): Promise<number> {
    const { index } = this.ctx;
    let keepFrom = Math.min(journalFromSeq, (index.last?.firstSeq ?? 0) || 1, index.appliedSeq + 1, this.ctx.hold().segmentsFrom);
    for (const seq of this.leasedPoints()) {
      // A point inside a pack is read by replaying the journal from the pack's start.
      const p = packs.find((x) => x.firstSeq <= seq && seq < x.lastSeq);
      if (p) keepFrom = Math.min(keepFrom, p.firstSeq);
    }
    let removed = 0;
    for (const s of this.ctx.journal.reader.segments(true)) {
      if (s.lastSeq === null || s.lastSeq >= keepFrom) break;
      this.ctx.storage.remove(s.path);
      removed++;
    }
    if (removed > 0) await this.ctx.storage.syncDir(this.ctx.journalDir);
    return removed;
  }
}
