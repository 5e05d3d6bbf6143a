// The transaction log: one row per point the store still holds at a window end, with how finely it is
// held. The transaction index keeps an entry for every window ever applied, so the rows come from the
// catalog's chain of packs (each restores the point at its end), the index and how far back the
// journal reaches — what the writer holds in memory and a reader in another process finds on disk, so
// both print the same log.
//
//   a pack of one window whose writes the journal still holds   `writes` (every write in it restorable)
//   a pack of one window                                         `window` (its end restorable)
//   a merged pack (several windows)                              the policy's tier for the age of its
//       end: `minutely`, `hourly` or `daily`; `windows-merged` when no periodic term applies (the
//       policy changed since); one row, its figures summed over the windows it covers
//   the window ending at the point before the oldest pack        `window` (the oldest restorable point)
// Windows inside a merged pack or dropped whole get no row.
import { assert } from '../errors.js';
import type { SeqRange } from '../lifecycle/held.js';
import { granularityAt, type RetentionPolicy } from '../lifecycle/retention.js';
import type { History } from '../restore/history.js';
import { lowerBound } from '../sorted.js';
import type { TxEntry } from '../transactions/transactions.js';
import { isoTime } from '../units.js';

export type PointGranularity = 'writes' | 'window' | 'minutely' | 'hourly' | 'daily' | 'windows-merged';

export interface LogEntry {
  /** The transaction id of the (last) window whose end this row is. */
  id: number;
  firstSeq: number;
  lastSeq: number;
  t1: string;
  t2: string;
  writes: number;
  bytesWritten: number;
  changedBlocks: number;
  forwardBytes: number;
  backwardBytes: number;
  packBytes: number;
  /** How finely the store holds history here (see above). */
  granularity: PointGranularity;
  /** Windows this row covers: 1, or how many a merged pack holds. */
  windows: number;
}

export interface LogSource {
  /** Every applied window, oldest first (read before the packs are listed: a pack is on disk before its entry). */
  entries: readonly TxEntry[];
  /** The chain of packs, in seq order, contiguous. */
  packs: readonly SeqRange[];
  /** The first write the journal still holds (Infinity when it holds none). */
  journalFirstSeq: number;
  policy: RetentionPolicy;
  now: number;
}

/** The retained points, oldest first. */
export function transactionLog(src: LogSource): LogEntry[] {
  const { entries, packs } = src;
  const rows: LogEntry[] = [];
  const lastApplied = entries.length > 0 ? entries[entries.length - 1].lastSeq : 0;
  const firstIndexOf = (seq: number) => lowerBound(entries, (e) => e.lastSeq >= seq);
  // The point before the oldest pack is held too (the oldest restorable one); with no pack, the applied point.
  const oldest = packs.length > 0 ? packs[0].firstSeq - 1 : lastApplied;
  // (Past lastApplied only in a reader that read the index just before the writer dropped those windows.)
  if (oldest > 0 && oldest <= lastApplied) {
    const i = firstIndexOf(oldest);
    assert(i < entries.length && entries[i].lastSeq === oldest, `the oldest held point ${oldest} is a window end`);
    rows.push(row(entries, i, i, 'window'));
  }
  for (const p of packs) {
    // A pack whose window is being applied (its entry not written yet) is not in the log yet.
    if (p.lastSeq > lastApplied) break;
    const from = firstIndexOf(p.firstSeq);
    const to = firstIndexOf(p.lastSeq);
    assert(to < entries.length && entries[from].firstSeq === p.firstSeq && entries[to].lastSeq === p.lastSeq, `pack ${p.firstSeq}-${p.lastSeq} covers whole windows of the index`);
    rows.push(row(entries, from, to, from === to ? (src.journalFirstSeq <= p.firstSeq ? 'writes' : 'window') : mergedTier(src, entries[to].t2)));
  }
  return rows;
}

function mergedTier(src: LogSource, t2: number): PointGranularity {
  const g = granularityAt(src.policy, Math.max(0, src.now - t2));
  return g === 'minutely' || g === 'hourly' || g === 'daily' ? g : 'windows-merged';
}

/** The row for windows from..to (indices into entries). */
function row(entries: readonly TxEntry[], from: number, to: number, granularity: PointGranularity): LogEntry {
  const first = entries[from];
  const last = entries[to];
  const out: LogEntry = {
    id: last.id, firstSeq: first.firstSeq, lastSeq: last.lastSeq, t1: isoTime(first.t1), t2: isoTime(last.t2),
    writes: 0, bytesWritten: 0, changedBlocks: 0, forwardBytes: 0, backwardBytes: 0, packBytes: 0,
    granularity, windows: to - from + 1,
  };
  for (let i = from; i <= to; i++) {
    const e = entries[i];
    out.writes += e.writes;
    out.bytesWritten += e.bytesWritten;
    out.changedBlocks += e.changedBlocks;
    out.forwardBytes += e.fwdBytes;
    out.backwardBytes += e.bwdBytes;
    out.packBytes += e.packBytes;
  }
  return out;
}

/** The log of a store as its history shows it now (writer and reader alike; a reader refreshes its index first). */
export function historyLog(history: History, policy: RetentionPolicy, now: number): LogEntry[] {
  const entries = history.index.entries;
  return transactionLog({ entries, packs: history.catalog.packs(), journalFirstSeq: history.held.journalFirstSeq(), policy, now });
}
