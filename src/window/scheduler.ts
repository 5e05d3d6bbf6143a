// The window scheduler decides where one transaction window ends and the next begins. It only
// counts; the store asks it after every write, at flushes and on clock ticks.
import { assert } from '../errors.js';
import type { WindowPolicy } from './policy.js';

export interface OpenWindow {
  firstSeq: number;
  lastSeq: number;
  /** Time of the first and of the last write. */
  t1: number;
  t2: number;
  writes: number;
  bytes: number;
  /** When this window is due to close by time (fixed or adaptive), or Infinity. */
  deadline: number;
}

export interface SchedulerLimits {
  windowBytesMax: number;
  windowWritesMax: number;
}

export class WindowScheduler {
  private open: OpenWindow | null = null;
  /** Bytes per second, smoothed over closed windows (adaptive policy). */
  private rate = 0;

  constructor(readonly policy: WindowPolicy, private readonly limits: SchedulerLimits) {}

  get current(): Readonly<OpenWindow> | null {
    return this.open;
  }

  /** Would a write of `bytes` at `now` have to start a new window? (The open one is closed first.) */
  mustCloseBefore(bytes: number, now: number): boolean {
    const w = this.open;
    if (!w) return false;
    return now >= w.deadline || w.bytes + bytes > this.limits.windowBytesMax || w.writes + 1 > this.limits.windowWritesMax;
  }

  /** Records a write; returns true when the window is now full and must close. */
  noteWrite(seq: number, bytes: number, time: number): boolean {
    let w = this.open;
    if (!w) {
      w = this.open = { firstSeq: seq, lastSeq: seq, t1: time, t2: time, writes: 0, bytes: 0, deadline: this.deadlineFrom(time) };
    }
    assert(seq === w.lastSeq + (w.writes === 0 ? 0 : 1), `window writes are consecutive (seq ${seq} after ${w.lastSeq})`);
    w.lastSeq = seq;
    w.t2 = time;
    w.writes += 1;
    w.bytes += bytes;
    const p = this.policy;
    return (
      (p.writes !== undefined && w.writes >= p.writes) ||
      (p.bytes !== undefined && w.bytes >= p.bytes) ||
      (p.adaptive !== undefined && w.bytes >= p.adaptive.targetBytes) ||
      w.writes >= this.limits.windowWritesMax ||
      w.bytes >= this.limits.windowBytesMax
    );
  }

  /** A flush marks a window boundary under the marker policy. */
  closesAtFlush(): boolean {
    return this.policy.marker && this.open !== null;
  }

  /** True when the open window's time is up. */
  isDue(now: number): boolean {
    return this.open !== null && now >= this.open.deadline;
  }

  /** The time at which `isDue` turns true, or Infinity. */
  nextDeadline(): number {
    return this.open?.deadline ?? Infinity;
  }

  /** Ends the open window (if any) and returns it. */
  close(now: number): OpenWindow | null {
    const w = this.open;
    if (!w) return null;
    this.open = null;
    if (this.policy.adaptive) {
      const seconds = Math.max(now - w.t1, 1) / 1000;
      const observed = w.bytes / seconds;
      this.rate = this.rate === 0 ? observed : 0.5 * this.rate + 0.5 * observed;
    }
    return w;
  }

  /** The period an adaptive window gets now: the time the smoothed rate needs to fill the target. */
  adaptivePeriodMs(): number {
    const a = this.policy.adaptive;
    if (!a) return Infinity;
    if (this.rate === 0) return a.maxMs;
    return Math.min(a.maxMs, Math.max(a.minMs, (a.targetBytes / this.rate) * 1000));
  }

  private deadlineFrom(t1: number): number {
    let period = this.policy.periodMs ?? Infinity;
    if (this.policy.adaptive) period = Math.min(period, this.adaptivePeriodMs());
    return t1 + period;
  }
}
