// How the packs on disk line up with the transaction index, for verify.
//
// The packs: the chain the writer and readers use (src/lifecycle/held.ts chainOf), the packs a
// merged pack supersedes (left by an interrupted consolidation), and, unlike chainOf, which trusts
// the files, what damage can leave: a gap (a pack missing) and a pack that partly overlaps another
// (never written by rewind). The chain is taken per run of packs without a gap, so a missing pack
// shows up against the index instead of stopping the check.
//
// The index keeps an entry for every window applied from the oldest point held on (compaction takes
// older ones out; until it does, they stay). Against it, each chain pack is
//   - one or several whole consecutive windows (a window's pack, or a merged pack),
//   - a window not indexed yet, right after the last applied one (being applied, or cut off by a crash),
//   - or damage: it starts or ends inside a window, or has no window and does not follow the last.
// Windows before the chain's first pack were dropped by retention; a window after it that no chain
// pack covers has lost its pack.
import { chainOf, type SeqRange } from '../lifecycle/held.js';
import { lowerBound } from '../sorted.js';
import type { TxEntry } from '../transactions/transactions.js';

export interface PackLayout<T extends SeqRange> {
  /** In seq order; contiguous except where a pack is missing. */
  chain: T[];
  superseded: T[];
  /** Packs partly overlapping `other`, a pack of the chain. */
  overlapping: { pack: T; other: T }[];
  /** Packs whose name ends before it starts. */
  backwards: T[];
}

export function layOutPacks<T extends SeqRange>(packs: readonly T[]): PackLayout<T> {
  // chainOf's order: a larger pack before the ones it covers.
  const backwards = packs.filter((p) => p.lastSeq < p.firstSeq);
  const sorted = packs.filter((p) => p.lastSeq >= p.firstSeq).sort((a, b) => a.firstSeq - b.firstSeq || b.lastSeq - a.lastSeq);
  const overlapping: { pack: T; other: T }[] = [];
  const runs: T[][] = [];
  // The chain pack reaching furthest so far (the last one chainOf would take).
  let top: T | null = null;
  for (const p of sorted) {
    if (top && p.firstSeq <= top.lastSeq && p.lastSeq > top.lastSeq) {
      overlapping.push({ pack: p, other: top });
      continue;
    }
    // Past a gap a new run starts, with this pack first in its chain (it reaches past the last run).
    if (!top || p.firstSeq > top.lastSeq + 1) runs.push([]);
    runs[runs.length - 1].push(p);
    if (!top || p.lastSeq > top.lastSeq) top = p;
  }
  const chain: T[] = [];
  const superseded: T[] = [];
  for (const run of runs) {
    const c = chainOf(run);
    chain.push(...c.chain);
    superseded.push(...c.superseded);
  }
  return { chain, superseded, overlapping, backwards };
}

export type PackRole =
  /** Covers exactly the windows entries[from..to] (from < to: a merged pack). */
  | { kind: 'windows'; from: number; to: number }
  /** Follows the last applied window (or the unapplied pack before it). */
  | { kind: 'unapplied' }
  /** Starts or ends inside a window. */
  | { kind: 'misaligned' }
  /** After the last applied window, but with a gap before it. */
  | { kind: 'orphan' };

export interface Alignment {
  /** One per chain pack. */
  roles: PackRole[];
  /** Windows before the chain's first pack (all of them when no pack is left). */
  retired: number;
  /** Windows after that no chain pack covers or overlaps. */
  missing: TxEntry[];
}

/** Lines the chain up with the index entries (ascending, contiguous, as the index keeps them). */
export function alignPacks(chain: readonly SeqRange[], entries: readonly TxEntry[]): Alignment {
  const byFirst = new Map(entries.map((e, i) => [e.firstSeq, i]));
  const byLast = new Map(entries.map((e, i) => [e.lastSeq, i]));
  const appliedSeq = entries[entries.length - 1]?.lastSeq ?? 0;
  // Entries covered by a window pack, or overlapped by a misaligned one (reported as that pack's damage).
  const accounted = new Uint8Array(entries.length);
  const roles: PackRole[] = [];
  let expectFirst = appliedSeq + 1;
  for (const p of chain) {
    if (p.firstSeq > appliedSeq) {
      if (p.firstSeq === expectFirst) {
        roles.push({ kind: 'unapplied' });
        expectFirst = p.lastSeq + 1;
      } else {
        roles.push({ kind: 'orphan' });
      }
      continue;
    }
    const from = byFirst.get(p.firstSeq);
    const to = byLast.get(p.lastSeq);
    if (from !== undefined && to !== undefined && to >= from) {
      roles.push({ kind: 'windows', from, to });
      accounted.fill(1, from, to + 1);
      continue;
    }
    roles.push({ kind: 'misaligned' });
    for (let i = lowerBound(entries, (e) => e.lastSeq >= p.firstSeq); i < entries.length && entries[i].firstSeq <= p.lastSeq; i++) accounted[i] = 1;
  }
  const chainFirst = chain.length > 0 ? chain[0].firstSeq : Infinity;
  let retired = 0;
  const missing: TxEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    if (accounted[i]) continue;
    if (entries[i].lastSeq < chainFirst) retired++;
    else missing.push(entries[i]);
  }
  return { roles, retired, missing };
}
