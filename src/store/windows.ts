// Where transaction windows end: the window policy asked after every captured write, at flushes and
// on a timer, and each closed window given its transaction id and journal records and handed on to
// be applied.
import type { Clock } from '../clock.js';
import { assert } from '../errors.js';
import type { RecordRef } from '../journal/reader.js';
import type { ClosedWindow } from '../window/closed-window.js';
import { parseWindowSpec } from '../window/policy.js';
import { WindowScheduler, type SchedulerLimits } from '../window/scheduler.js';

export interface WindowCloserOptions {
  /** The store's window policy (`time:1s`, `count:N`, ...). */
  spec: string;
  limits: SchedulerLimits;
  clock: Clock;
  /** The transaction id of the next window to close. */
  firstTxId: number;
  /** Close time-based windows on a timer; it calls `onTimer` when the open window may be due. */
  autoTick: boolean;
  onTimer: () => void;
  /** Receives every closed window, in order. */
  onClosed: (w: ClosedWindow) => void;
}

export class WindowCloser {
  private readonly scheduler: WindowScheduler;
  /** The records of the open window. */
  private openRecords: RecordRef[] = [];
  /** Bytes written in the open window. */
  private openBytes = 0;
  private nextTxId: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: WindowCloserOptions) {
    this.scheduler = new WindowScheduler(parseWindowSpec(opts.spec), opts.limits);
    this.nextTxId = opts.firstTxId;
  }

  /** Before a write of `bytes` at `now` is journaled: closes the open window if the write may not join it. */
  makeRoom(bytes: number, now: number): void {
    if (this.scheduler.mustCloseBefore(bytes, now)) this.close(now);
  }

  /** A journaled write joins the open window, which closes if it is now full (else the timer is armed). */
  add(ref: RecordRef): void {
    this.openRecords.push(ref);
    this.openBytes += ref.length;
    if (this.scheduler.noteWrite(ref.seq, ref.length, ref.time)) this.close(ref.time);
    else this.armTimer();
  }

  /** A write recovered from the journal joins the windows again, at its own time (no timer). */
  replay(ref: RecordRef): void {
    this.makeRoom(ref.length, ref.time);
    this.openRecords.push(ref);
    this.openBytes += ref.length;
    if (this.scheduler.noteWrite(ref.seq, ref.length, ref.time)) this.close(ref.time);
  }

  /** The open window's seqs, bytes and first and last write times; null when it is empty. */
  openWindow(): { firstSeq: number; lastSeq: number; bytes: number; t1: number; t2: number } | null {
    const r = this.openRecords;
    if (r.length === 0) return null;
    return { firstSeq: r[0].seq, lastSeq: r[r.length - 1].seq, bytes: this.openBytes, t1: r[0].time, t2: r[r.length - 1].time };
  }

  /** Whether the policy ends a window at every flush (marker). */
  closesAtFlush(): boolean {
    return this.scheduler.closesAtFlush();
  }

  /** Closes the open window if its time is up, else waits for it. */
  tick(): void {
    const now = this.opts.clock.now();
    if (this.scheduler.isDue(now)) this.close(now);
    else this.armTimer();
  }

  /** Ends the open window at `now`. Returns its transaction id, or null if it was empty. */
  close(now: number): number | null {
    const w = this.scheduler.close(now);
    if (!w) return null;
    assert(this.openRecords.length === w.writes, `window holds ${w.writes} writes`);
    const cw: ClosedWindow = { id: this.nextTxId++, firstSeq: w.firstSeq, lastSeq: w.lastSeq, t1: w.t1, t2: w.t2, bytes: w.bytes, records: this.openRecords };
    this.openRecords = [];
    this.openBytes = 0;
    this.opts.onClosed(cw);
    return cw.id;
  }

  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private armTimer(): void {
    if (!this.opts.autoTick || this.timer) return;
    const deadline = this.scheduler.nextDeadline();
    if (!Number.isFinite(deadline)) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.opts.onTimer();
    }, Math.max(1, deadline - this.opts.clock.now()));
    this.timer.unref();
  }
}
