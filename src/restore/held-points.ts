// The points a reader can restore, as the catalog and the journal show them now, and the error a
// user gets for a point that is no longer held: it names the oldest restorable point and the nearest
// held points on both sides, so the next command can be typed from the message.
import { targetOutOfRange } from '../errors.js';
import type { JournalReader } from '../journal/reader.js';
import { isHeld, nearestHeld, oldestHeld, type HeldState } from '../lifecycle/held.js';
import { lowerBound } from '../sorted.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import { isoTime } from '../units.js';
import type { Catalog } from './catalog.js';
import { describeTarget, TimeInRetiredWindow, type Target } from './target.js';

export interface HeldPointsContext {
  catalog: Catalog;
  journal: JournalReader;
  index: TransactionIndex;
  appliedSeq(): number;
  lastSeq(): number;
  createdAt: number;
}

export class HeldPoints {
  constructor(private readonly ctx: HeldPointsContext) {}

  /** The first write the journal still holds (lastSeq + 1 when none). */
  journalFirstSeq(): number {
    const segs = this.ctx.journal.segments(true);
    return segs.length > 0 ? segs[0].firstSeq : this.ctx.lastSeq() + 1;
  }

  state(): HeldState {
    return { packs: this.ctx.catalog.packs(), journalFirstSeq: this.journalFirstSeq(), appliedSeq: this.ctx.appliedSeq(), lastSeq: this.ctx.lastSeq() };
  }

  /** The time of the point after write `seq`, when the index tells it (window ends, and 0). */
  timeOf(seq: number): number | null {
    if (seq === 0) return this.ctx.createdAt;
    const entries = this.ctx.index.entries;
    const i = lowerBound(entries, (e) => e.lastSeq >= seq);
    return i < entries.length && entries[i].lastSeq === seq ? entries[i].t2 : null;
  }

  describe(seq: number): string {
    const t = this.timeOf(seq);
    return t === null ? `seq ${seq}` : `seq ${seq} (${isoTime(t)})`;
  }

  /**
   * The time of the point after write `seq`: a window end's (or the store's creation for 0), else the
   * write's own stamp while the journal holds it; null when neither tells it any more.
   */
  pointTime(seq: number): number | null {
    const t = this.timeOf(seq);
    if (t !== null) return t;
    let time: number | null = null;
    this.ctx.journal.scan({
      fromSeq: seq,
      onRecord: (r) => {
        if (r.seq === seq) time = r.time;
        return r.seq < seq;
      },
    });
    return time;
  }

  /**
   * The point a resolved target stands for, checked: held, or the nearest held point at or before
   * it when `nearest` is set. Anything else is a TARGET_OUT_OF_RANGE error naming the held points.
   */
  check(target: Target, resolved: number | TimeInRetiredWindow, nearest = false): number {
    return this.pick(target, resolved, nearest).seq;
  }

  /** As check(), and whether the point is the nearest held one standing in for a target not held. */
  pick(target: Target, resolved: number | TimeInRetiredWindow, nearest = false): { seq: number; substituted: boolean } {
    const s = this.state();
    let before: number | null;
    let after: number | null;
    if (resolved instanceof TimeInRetiredWindow) {
      before = nearestHeld(s, resolved.afterSeq).before;
      after = nearestHeld(s, resolved.beforeSeq).after;
    } else {
      if (isHeld(s, resolved)) return { seq: resolved, substituted: false };
      ({ before, after } = nearestHeld(s, resolved));
    }
    if (nearest && before !== null) return { seq: before, substituted: true };
    const oldest = oldestHeld(s);
    const sides = [before !== null ? `before it: ${this.describe(before)}` : null, after !== null ? `after it: ${this.describe(after)}` : null].filter(Boolean).join('; ');
    throw targetOutOfRange(
      `${describeTarget(target)} is no longer held (retention or capacity retired it); the oldest restorable point is ${this.describe(oldest)}; nearest held points ${sides}; --nearest restores the one before`,
    );
  }
}
