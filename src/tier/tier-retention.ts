// Retention in the tier, decided from the manifest alone (never a LIST of the bucket). The policy is
// the store's, or the longer one given to `rewind tier --tier-retain`:
//   - packs whose end is older than the policy's horizon go, oldest first (the chain stays whole);
//     the point at the end of the newest one dropped becomes the tier's oldest point;
//   - a base goes when it is older than that point and a newer base exists (restores pick the
//     nearest base at or after their target, so it serves nothing any more);
//   - a journal segment goes when its writes are older than the policy's `writes` term (or than the
//     oldest point) and the newest base is after it (the journal after the newest base is how the
//     tier reaches points newer than that base, replayed from the start of its window);
//   - an index snapshot goes when a newer one replaces it.
// Periodic terms (minutely, hourly, daily) are not consolidated in the tier: it keeps every window
// end inside the horizon, which holds every point the policy promises and more.
import { horizonMs, writesAgeMs, type RetentionPolicy } from '../lifecycle/retention.js';
import { listedKeys, newestBase, type Manifest } from './manifest.js';

/** The manifest with what the policy no longer keeps taken out, and the keys of the objects that go. */
export function applyTierRetention(m: Manifest, policy: RetentionPolicy, now: number): { kept: Manifest; removed: string[] } {
  const horizon = horizonMs(policy);
  if (horizon === Infinity) return { kept: m, removed: [] };
  const cutoff = now - horizon;
  let drop = 0;
  while (drop < m.packs.length && m.packs[drop].t2 < cutoff) drop++;
  const packs = m.packs.slice(drop);
  const base = newestBase(m);
  const oldestPoint = packs.length > 0 ? packs[0].firstSeq - 1 : base?.seq ?? 0;
  const bases = m.bases.filter((b) => b === base || b.seq >= oldestPoint);
  const writesCutoff = now - writesAgeMs(policy);
  // The journal from the start of the newest base's window on: a replay from that base starts there.
  const keepJournalFrom = base ? Math.min(packs.find((p) => p.lastSeq === base.seq)?.firstSeq ?? base.seq + 1, base.seq + 1) : 0;
  const segments = m.segments.filter((s) => {
    if (!base || s.lastSeq >= keepJournalFrom) return true;
    if (s.lastSeq < oldestPoint) return false;
    // The time of its last write is at most the end of the pack holding it.
    const p = packs.find((x) => x.firstSeq <= s.lastSeq && s.lastSeq <= x.lastSeq);
    return !p || p.t2 >= writesCutoff;
  });
  const kept: Manifest = { ...m, packs, bases, segments };
  const still = listedKeys(kept);
  const removed = [...listedKeys(m)].filter((k) => !still.has(k));
  return { kept, removed };
}
