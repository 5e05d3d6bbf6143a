// Protection as a user sees it: the oldest point the store can restore, how far back the retention
// policy promises to reach (required), how far back the store does reach (achieved), how long the
// capacity would hold history at the recent write rate (predicted), and the alarm raised when the
// achieved protection falls short of the required one. Pure figures: the store gathers the inputs.
//
// Every point is kept for now (no pack is merged or dropped, no journal segment retired), so the
// oldest point held at any granularity is the oldest restorable point. Retirement changes
// `oldestRestorable` (and the granularity it is held at); the rest follows from it.
import { RECORD_HEADER_BYTES } from '../journal/record.js';
import { lowerBound } from '../sorted.js';
import { TX_ENTRY_BYTES } from '../transactions/transactions.js';
import { formatSeconds } from '../units.js';
import { oldestHeld, type SeqRange } from './held.js';
import { heldPacks, horizonMs, planRetention, writesAgeMs, type RetentionPolicy } from './retention.js';

/** A point of the history: the state right after write `seq`, as of `time` (ms; the write's time). */
export interface RestorablePoint {
  seq: number;
  time: number;
}

/** Seconds of history; null when there is nothing to say (see each field). */
export interface ProtectionFigures {
  /** How far back the policy promises: the age of its `writes` term, else its horizon. Null: keep everything (no promise to fall short of). */
  requiredSeconds: number | null;
  /** How far back the store reaches now: the age of the oldest point it holds. */
  achievedSeconds: number;
  /** How long the capacity would hold history at the recent write rate. Null: no capacity, or no writes lately. */
  predictedSeconds: number | null;
}

/** What a transaction index entry says about its window (the fields these figures need). */
export interface WindowFigures {
  lastSeq: number;
  t2: number;
  writes: number;
  bytesWritten: number;
  packBytes: number;
}

/** How far back recent growth is measured. */
export const GROWTH_SPAN_MS = 60_000;

/**
 * The time of the point after write `seq`: the end time of the window ending there (index entries in
 * seq order), or the time of the last window ending before it, or the store's creation for seq 0.
 */
export function pointTime(entries: readonly WindowFigures[], seq: number, createdAtMs: number): number {
  const i = lowerBound(entries, (e) => e.lastSeq > seq) - 1;
  return i >= 0 ? entries[i].t2 : createdAtMs;
}

/**
 * The oldest point the store can restore: the point before its oldest pack (each pack restores the
 * point before its first write), or the applied point when there is no pack. `packs` in seq order.
 */
export function oldestRestorable(packs: readonly SeqRange[], entries: readonly WindowFigures[], appliedSeq: number, createdAtMs: number): RestorablePoint {
  const seq = oldestHeld({ packs, appliedSeq });
  return { seq, time: pointTime(entries, seq, createdAtMs) };
}

/**
 * The oldest point from which every single write is still held: the start of the oldest pack whose
 * journal records are all still there (the journal holds from `journalFirstSeq` on), else the applied
 * point. `packs` in seq order.
 */
export function oldestWriteHeld(packs: readonly { firstSeq: number }[], journalFirstSeq: number, entries: readonly WindowFigures[], appliedSeq: number, createdAtMs: number): RestorablePoint {
  const p = packs.find((x) => x.firstSeq >= journalFirstSeq);
  const seq = p ? p.firstSeq - 1 : appliedSeq;
  return { seq, time: pointTime(entries, seq, createdAtMs) };
}

/**
 * Bytes of packs the retention policy says to consolidate or drop now and that are not done yet:
 * the windows in runs to merge and those past the horizon (by the sizes their windows were written at).
 */
export function consolidationBacklogBytes(policy: RetentionPolicy, now: number, packs: readonly { firstSeq: number; lastSeq: number }[], entries: readonly (WindowFigures & { firstSeq: number })[], appliedSeq: number): number {
  const applied = packs.filter((p) => p.lastSeq <= appliedSeq);
  const plan = planRetention(policy, now, heldPacks(applied, entries));
  const bytesOf = (from: number, to: number) => {
    let sum = 0;
    for (let i = lowerBound(entries, (e) => e.lastSeq >= from); i < entries.length && entries[i].lastSeq <= to; i++) sum += entries[i].packBytes;
    return sum;
  };
  let bytes = plan.drop > 0 ? bytesOf(applied[0].firstSeq, applied[plan.drop - 1].lastSeq) : 0;
  for (const m of plan.merges) bytes += bytesOf(applied[m.from].firstSeq, applied[m.to].lastSeq);
  return bytes;
}

/** The protection the policy asks for, in ms (null: it keeps everything). */
export function requiredMs(policy: RetentionPolicy): number | null {
  const writes = writesAgeMs(policy);
  if (writes === Infinity) return null;
  return writes > 0 ? writes : horizonMs(policy);
}

/**
 * History bytes written per second over the last GROWTH_SPAN_MS (or since the store was created, if
 * later): journal records and, for applied windows, their packs and index entries.
 * `unappliedBytesSince(t)` gives the journal bytes of writes not applied yet stamped after t.
 */
export function growthBytesPerSecond(entries: readonly WindowFigures[], unappliedBytesSince: (sinceMs: number) => number, now: number, createdAtMs: number): number {
  const spanMs = Math.min(GROWTH_SPAN_MS, Math.max(1000, now - createdAtMs));
  const since = now - spanMs;
  let bytes = unappliedBytesSince(since);
  for (let i = entries.length - 1; i >= 0 && entries[i].t2 > since; i--) {
    const e = entries[i];
    bytes += e.packBytes + e.bytesWritten + e.writes * RECORD_HEADER_BYTES + TX_ENTRY_BYTES;
  }
  return (bytes * 1000) / spanMs;
}

/**
 * `oldestHeld`: the oldest point restorable at the granularity the required protection speaks of (single
 * writes when the policy has a `writes` term, any point otherwise).
 */
export function protectionFigures(policy: RetentionPolicy, now: number, oldestHeld: RestorablePoint, capacityBytes: number | null, bytesPerSecond: number): ProtectionFigures {
  const required = requiredMs(policy);
  return {
    requiredSeconds: required === null ? null : required / 1000,
    achievedSeconds: Math.max(0, now - oldestHeld.time) / 1000,
    predictedSeconds: capacityBytes === null || !(bytesPerSecond > 0) ? null : capacityBytes / bytesPerSecond,
  };
}

export type ProtectionLevel = 'ok' | 'warning' | 'error';

/** Achieved protection under these shares of the required one is a warning, an error. */
export const PROTECTION_WARNING_SHARE = 0.85;
export const PROTECTION_ERROR_SHARE = 0.75;

/**
 * How the achieved protection compares with the required one. A store younger than the required
 * protection is measured against its age: it holds every point since it was created, so it is not short.
 */
export function protectionLevel(p: Pick<ProtectionFigures, 'requiredSeconds' | 'achievedSeconds'>, storeAgeSeconds: number): ProtectionLevel {
  if (p.requiredSeconds === null) return 'ok';
  const target = Math.min(p.requiredSeconds, Math.max(0, storeAgeSeconds));
  if (p.achievedSeconds < PROTECTION_ERROR_SHARE * target) return 'error';
  if (p.achievedSeconds < PROTECTION_WARNING_SHARE * target) return 'warning';
  return 'ok';
}

/** Remembers the last level, and says something only when it changes (once per crossing). */
export class ProtectionAlarm {
  private level: ProtectionLevel = 'ok';

  /** The line to log for these figures, or null when the level is the same as at the last check. */
  check(p: ProtectionFigures, storeAgeSeconds: number): string | null {
    const level = protectionLevel(p, storeAgeSeconds);
    if (level === this.level) return null;
    this.level = level;
    if (p.requiredSeconds === null) return `protection recovered: the retention policy keeps everything (achieved ${formatSeconds(p.achievedSeconds)})`;
    const figures = `achieved ${formatSeconds(p.achievedSeconds)} of the required ${formatSeconds(p.requiredSeconds)}`;
    if (level === 'ok') return `protection recovered: ${figures}`;
    const share = level === 'error' ? PROTECTION_ERROR_SHARE : PROTECTION_WARNING_SHARE;
    return `${level}: protection under ${share * 100}% of the required: ${figures} (history is retired faster than the retention policy asks; raise the capacity or shorten the policy)`;
  }
}
