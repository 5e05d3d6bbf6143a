// Which past points a store holds, from what is on disk: the chain of packs (each restores the point
// before its first write from the point after its last) and how far back the journal still holds
// single writes.
//
// Packs are immutable and named by their seq range. Consolidation writes a pack k..m before it
// removes the packs it replaces, and retirement removes the oldest packs first, so after a crash at
// any step the files on disk are a chain with, at worst, some packs still present that a larger one
// covers. chainOf() takes the largest packs and calls the rest superseded: the points held are the
// same whether the replaced packs are still there or not, and never counted twice.
//
// A point (the state right after write `seq`) is held when
//   - it is at or after the applied point (the replica plus journal writes not applied yet), or
//   - it is the end of a pack in the chain, or the point right before the oldest one, or
//   - the journal still holds the writes from the start of the pack containing it up to it
//     (roll back to that pack's start, then replay those writes).
import { assert } from '../errors.js';

export interface SeqRange {
  firstSeq: number;
  lastSeq: number;
}

/**
 * The chain of packs to use and the packs it supersedes. `packs` may come in any order. The chain's
 * packs are contiguous; a pack that does not join the chain (a gap before it) is not used either.
 */
export function chainOf<T extends SeqRange>(packs: readonly T[]): { chain: T[]; superseded: T[] } {
  const sorted = [...packs].sort((a, b) => a.firstSeq - b.firstSeq || b.lastSeq - a.lastSeq);
  const chain: T[] = [];
  const superseded: T[] = [];
  for (const p of sorted) {
    const last = chain[chain.length - 1];
    if (last && p.lastSeq <= last.lastSeq) superseded.push(p);
    else chain.push(p);
  }
  // Partly overlapping packs are never written: a merged pack spans whole packs of the chain.
  for (let i = 1; i < chain.length; i++) {
    assert(chain[i].firstSeq === chain[i - 1].lastSeq + 1, `packs on disk form a chain (${chain[i - 1].firstSeq}-${chain[i - 1].lastSeq} then ${chain[i].firstSeq}-${chain[i].lastSeq})`);
  }
  return { chain, superseded };
}

export interface HeldState {
  /** The chain of packs, in seq order, contiguous. */
  packs: readonly SeqRange[];
  /** The first seq whose record the journal still holds (lastSeq + 1 when it holds none). */
  journalFirstSeq: number;
  /** The replica stands after this write. */
  appliedSeq: number;
  /** The newest write. */
  lastSeq: number;
}

/** The oldest point held: the point before the oldest pack, or the applied point with none. */
export function oldestHeld(s: Pick<HeldState, 'packs' | 'appliedSeq'>): number {
  return s.packs.length > 0 ? s.packs[0].firstSeq - 1 : s.appliedSeq;
}

/** The pack of the chain holding write `seq`, or -1. */
function packIndexOf(s: HeldState, seq: number): number {
  let lo = 0;
  let hi = s.packs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = s.packs[mid];
    if (seq < p.firstSeq) hi = mid - 1;
    else if (seq > p.lastSeq) lo = mid + 1;
    else return mid;
  }
  return -1;
}

export function isHeld(s: HeldState, seq: number): boolean {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > s.lastSeq) return false;
  if (seq >= s.appliedSeq) return true;
  const oldest = oldestHeld(s);
  if (seq < oldest) return false;
  if (seq === oldest) return true;
  const i = packIndexOf(s, seq);
  if (i < 0) return false;
  const p = s.packs[i];
  return seq === p.lastSeq || s.journalFirstSeq <= p.firstSeq;
}

/** The nearest held points at or before and at or after `seq` (null where there is none). */
export function nearestHeld(s: HeldState, seq: number): { before: number | null; after: number | null } {
  if (isHeld(s, seq)) return { before: seq, after: seq };
  const oldest = oldestHeld(s);
  if (seq < oldest) return { before: null, after: oldest };
  if (seq > s.lastSeq) return { before: s.lastSeq, after: null };
  const i = packIndexOf(s, seq);
  assert(i >= 0, `a point between the oldest held and the applied point lies in a pack (${seq})`);
  const p = s.packs[i];
  // Not held inside p: only p's two ends are (the journal does not reach back to p's start).
  return { before: p.firstSeq - 1, after: p.lastSeq };
}

/** How finely the point after write `seq` is held: a single write, or a pack's end. */
export function heldAs(s: HeldState, seq: number): 'write' | 'pack' | null {
  if (!isHeld(s, seq)) return null;
  if (seq >= s.appliedSeq) return 'write';
  const i = packIndexOf(s, seq);
  // Outside every pack: the point before the oldest one.
  if (i < 0) return 'pack';
  return s.journalFirstSeq <= s.packs[i].firstSeq ? 'write' : 'pack';
}
