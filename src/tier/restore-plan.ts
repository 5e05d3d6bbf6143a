// Which tier objects restore the point after write T, from the manifest alone. Two ways, the first
// preferred:
//   back  — the nearest base at or after T (seq S), and the packs from the one holding write T + 1 up
//           to S: their backward increments set every block they change back to its contents before
//           them (the same rollback as a local restore, src/restore/rollback.ts). When T is inside a
//           pack (not its end), the journal writes from that pack's start up to T are replayed too.
//   replay — the newest base before T (seq S), and the sealed journal from S's window on, replayed
//           up to T (points newer than every base).
// The objects are then staged as a small store (tier-reader.ts) and restored by src/restore/history.ts.
import { targetOutOfRange } from '../errors.js';
import type { BaseSet, Manifest, ShippedPack, ShippedSegment } from './manifest.js';

export interface RestorePlan {
  seq: number;
  base: BaseSet;
  packs: ShippedPack[];
  segments: ShippedSegment[];
}

/** Segments covering writes [from, to] without a gap, or null when the tier does not hold them all. */
export function segmentsCovering(m: Manifest, from: number, to: number): ShippedSegment[] | null {
  if (to < from) return [];
  const out: ShippedSegment[] = [];
  let next = from;
  for (const s of m.segments) {
    if (s.lastSeq < next) continue;
    if (s.firstSeq > next) return null;
    out.push(s);
    next = s.lastSeq + 1;
    if (next > to) return out;
  }
  return null;
}

/** The newest point the tier can restore. */
export function newestPoint(m: Manifest): number {
  let newest = -1;
  for (const b of m.bases) {
    newest = Math.max(newest, b.seq);
    const startOfWindow = m.packs.find((p) => p.lastSeq === b.seq)?.firstSeq ?? b.seq + 1;
    let next = Math.min(startOfWindow, b.seq + 1);
    for (const s of m.segments) {
      if (s.lastSeq < next) continue;
      if (s.firstSeq > next) break;
      next = s.lastSeq + 1;
    }
    newest = Math.max(newest, next - 1);
  }
  return newest;
}

/** The oldest point the tier can restore (-1: none). */
export function oldestPoint(m: Manifest): number {
  const base = m.bases[m.bases.length - 1];
  if (!base) return -1;
  return m.packs.length > 0 && m.packs[0].firstSeq - 1 <= base.seq ? m.packs[0].firstSeq - 1 : base.seq;
}

export function planRestore(m: Manifest, seq: number): RestorePlan | null {
  // back: the nearest base at or after T whose packs down to T are all there.
  for (const base of m.bases) {
    if (base.seq < seq) continue;
    if (base.seq === seq) return { seq, base, packs: [], segments: [] };
    const i = m.packs.findIndex((p) => p.firstSeq <= seq + 1 && seq + 1 <= p.lastSeq);
    const j = m.packs.findIndex((p) => p.lastSeq === base.seq);
    if (i < 0 || j < i) continue;
    const packs = m.packs.slice(i, j + 1);
    const first = packs[0];
    if (first.firstSeq === seq + 1) return { seq, base, packs, segments: [] };
    // T inside the first pack: its writes from the pack's start up to T, from the journal.
    const segments = segmentsCovering(m, first.firstSeq, seq);
    if (segments) return { seq, base, packs, segments };
  }
  // replay: the newest base before T, and the journal after it (from its window's start: the staged
  // index's last entry says where the journal walk starts).
  for (let k = m.bases.length - 1; k >= 0; k--) {
    const base = m.bases[k];
    if (base.seq >= seq) continue;
    const from = Math.min(m.packs.find((p) => p.lastSeq === base.seq)?.firstSeq ?? base.seq + 1, base.seq + 1);
    const segments = segmentsCovering(m, from, seq);
    if (segments) return { seq, base, packs: [], segments };
  }
  return null;
}

/** The plan for T, or an error naming the points the tier holds around it. */
export function planOrExplain(m: Manifest, where: string, seq: number): RestorePlan {
  const plan = planRestore(m, seq);
  if (plan) return plan;
  const newest = newestPoint(m);
  const oldest = oldestPoint(m);
  if (newest < 0) throw targetOutOfRange(`${where} holds no base image yet: nothing can be restored from it (is \`rewind serve\` shipping?)`);
  if (seq > newest) throw targetOutOfRange(`seq ${seq} is after the newest point the tier holds (seq ${newest}); newer history is not shipped yet`);
  if (seq < oldest) throw targetOutOfRange(`seq ${seq} is no longer held in the tier; the oldest point it holds is seq ${oldest}`);
  const p = m.packs.find((x) => x.firstSeq <= seq && seq <= x.lastSeq);
  const around = p ? `; nearest points it holds: seq ${p.firstSeq - 1} and seq ${p.lastSeq}` : '';
  throw targetOutOfRange(`seq ${seq} is not held in the tier (its single writes are not there)${around}`);
}
