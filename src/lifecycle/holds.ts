// Durable holds on past points (a clone holds the point it starts from until it is deleted), and which
// of them keep history the retention plan would otherwise retire. The lifecycle treats a hold as a
// lease that outlives processes: no drop passes it, no merge takes it away, and the journal it
// replays stays. Pure: the caller gathers the holds (src/clones/clone-record.ts cloneHolds) and the plan.
import type { SeqRange } from './held.js';
import type { RetentionPlan } from './retention.js';

export interface PointHold {
  /** Who holds it (a clone's name). */
  name: string;
  seq: number;
}

/**
 * The holds that keep history past the policy: a point before where the plan's drops would leave the
 * oldest one, strictly inside a run the plan merges, or inside a pack whose journal the plan retires.
 * `packs`: the applied chain, in seq order, as the plan was made from; `appliedSeq`: the replica's point.
 */
export function holdsPastPolicy(holds: readonly PointHold[], plan: RetentionPlan, packs: readonly SeqRange[], appliedSeq: number): PointHold[] {
  const oldestAfterDrops = plan.drop < packs.length ? packs[plan.drop].firstSeq - 1 : appliedSeq;
  return holds.filter(({ seq }) => {
    if (seq < oldestAfterDrops) return true;
    if (plan.merges.some((m) => seq > packs[m.from].firstSeq - 1 && seq < packs[m.to].lastSeq)) return true;
    const inside = packs.find((p) => p.firstSeq <= seq && seq < p.lastSeq);
    return inside !== undefined && inside.firstSeq < plan.journalFromSeq;
  });
}
