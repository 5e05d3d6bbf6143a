// Restore targets: `--seq N`, `--time T` and `--tx ID` all become one sequence number, the last
// write the target includes (0 = before any write).
import { badArgument, corrupt, targetOutOfRange } from '../errors.js';
import type { JournalReader } from '../journal/reader.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import { isoTime } from '../units.js';

export type Target = { seq: number } | { time: number } | { tx: number };

export interface TargetContext {
  index: TransactionIndex;
  journal: JournalReader;
  lastSeq: number;
  createdAt: number;
  now: number;
  /** The first write the journal still holds (retired segments hold the older ones no more). */
  journalFirstSeq: number;
}

/**
 * A time that falls inside a window whose single writes are no longer held: the target is some write
 * after `afterSeq` and before `beforeSeq` (exclusive), which cannot be told exactly any more.
 */
export class TimeInRetiredWindow {
  constructor(readonly afterSeq: number, readonly beforeSeq: number) {}
}

export function describeTarget(t: Target): string {
  return 'seq' in t ? `seq ${t.seq}` : 'tx' in t ? `transaction ${t.tx}` : `time ${isoTime(t.time)}`;
}

export function resolveTarget(ctx: TargetContext, t: Target): number | TimeInRetiredWindow {
  if ('seq' in t) {
    if (!Number.isSafeInteger(t.seq) || t.seq < 0) throw badArgument(`seq ${t.seq} must be a whole number (0 = before the first write)`);
    if (t.seq > ctx.lastSeq) throw targetOutOfRange(`seq ${t.seq} is after the newest write (seq ${ctx.lastSeq})`);
    return t.seq;
  }
  if ('tx' in t) {
    const n = ctx.index.last?.id ?? 0;
    if (!Number.isSafeInteger(t.tx) || t.tx < 1) throw badArgument(`transaction id ${t.tx} must be a whole number from 1`);
    if (t.tx > n) throw targetOutOfRange(`transaction ${t.tx} does not exist (${n === 0 ? 'no transaction is applied yet' : `transactions are 1..${n}`})`);
    const e = ctx.index.byId(t.tx);
    // Compacted out of the index: its window ended before the first one the index keeps, before every
    // point held, which the caller's check of held points reports (src/restore/held-points.ts).
    return e ? e.lastSeq : ctx.index.entries[0].firstSeq - 1;
  }
  const time = t.time;
  if (!Number.isFinite(time)) throw badArgument('time is not a valid time');
  if (time < ctx.createdAt) throw targetOutOfRange(`time ${isoTime(time)} is before the oldest retained point (store created ${isoTime(ctx.createdAt)})`);
  if (time > ctx.now) throw targetOutOfRange(`time ${isoTime(time)} is in the future (now ${isoTime(ctx.now)})`);
  const entries = ctx.index.entries;
  const i = ctx.index.firstEndingAfter(time);
  let lo: number;
  let hi: number;
  let start: { segment: number; position: number } | undefined;
  if (i < entries.length) {
    const e = entries[i];
    if (e.t1 > time) return e.firstSeq - 1;
    if (e.firstSeq < ctx.journalFirstSeq) return new TimeInRetiredWindow(e.firstSeq - 1, e.lastSeq);
    lo = e.firstSeq - 1;
    hi = e.lastSeq;
    start = e.journal;
  } else {
    const last = entries[entries.length - 1];
    lo = last?.lastSeq ?? 0;
    hi = ctx.lastSeq;
    start = last?.journal;
  }
  // The last write stamped at or before `time` (stamps never decrease along the sequence).
  let found = lo;
  const stop = ctx.journal.scan({
    fromSeq: lo + 1,
    start,
    onRecord: (r) => {
      if (r.seq > hi || r.time > time) return false;
      found = r.seq;
    },
  });
  if (stop.kind === 'damaged') throw corrupt(stop.segment.path, stop.position, `${stop.reason} (needed to find time ${isoTime(time)})`);
  return found;
}
