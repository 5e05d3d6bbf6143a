// What changed in one volume between two held points X < Y: the blocks written by writes X+1..Y, as
// merged extents in offset order, from the packs' block lists and the journal alone (no volume and
// no encoding is read).
//
// Why it is exact, block by block: a pack covering seqs k..m lists every block a write k..m touched
// (the builder's changedBlocks; a consolidated pack the union of the packs it replaced). So
//   - a pack of the chain lying wholly inside (X, Y] contributes its block list;
//   - a pack only partly inside (X inside it, or Y inside it: points held through the journal, see
//     lifecycle/held.ts) would over-report, so its part inside (X, Y] comes from the journal records,
//     which the journal still holds because X and Y are held;
//   - writes after the last pack (the window being built, windows queued, the open window) come from
//     the journal records too.
// Extents are block-granular ("changed blocks"): a write of 1 byte marks its whole block (volume
// sizes are multiples of the block size, so an extent never passes the end).
// Nothing is missed: every write X+1..Y is inside exactly one of these pieces.
import { assert, corrupt } from '../errors.js';
import { readPackBlocks } from '../increment/pack-sections.js';
import type { JournalReader } from '../journal/reader.js';
import type { Storage } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { Catalog } from './catalog.js';

export interface Extent {
  offset: number;
  length: number;
}

export interface DiffContext {
  storage: Storage;
  blockSize: number;
  catalog: Catalog;
  journal: JournalReader;
  index: TransactionIndex;
}

/** Runs of consecutive block numbers [first, last], gathered in any order, merged at the end. */
class BlockRuns {
  private readonly firsts: number[] = [];
  private readonly lasts: number[] = [];

  add(first: number, last: number): void {
    const n = this.firsts.length;
    // Consecutive input (a section's ascending list, a sequential write) extends the last run.
    if (n > 0 && first >= this.firsts[n - 1] && first <= this.lasts[n - 1] + 1) {
      if (last > this.lasts[n - 1]) this.lasts[n - 1] = last;
      return;
    }
    this.firsts.push(first);
    this.lasts.push(last);
  }

  /** Merged, in order, as byte extents of a volume of `size` bytes. */
  extents(blockSize: number, size: number): Extent[] {
    const order = this.firsts.map((_, i) => i).sort((a, b) => this.firsts[a] - this.firsts[b]);
    const out: Extent[] = [];
    let first = -1;
    let last = -2;
    const emit = () => {
      if (first < 0) return;
      const offset = first * blockSize;
      out.push({ offset, length: Math.min((last + 1) * blockSize, size) - offset });
    };
    for (const i of order) {
      const f = this.firsts[i];
      const l = this.lasts[i];
      if (f <= last + 1) {
        if (l > last) last = l;
        continue;
      }
      emit();
      first = f;
      last = l;
    }
    emit();
    return out;
  }
}

/**
 * The extents of volume `volume` (index, `size` bytes) written after write `fromSeq` up to write
 * `toSeq` included. Both points must be held (and leased by the caller while this runs).
 */
export function changedExtents(ctx: DiffContext, volume: number, size: number, fromSeq: number, toSeq: number): Extent[] {
  assert(Number.isSafeInteger(fromSeq) && Number.isSafeInteger(toSeq) && 0 <= fromSeq && fromSeq <= toSeq, `a diff runs forward between points (${fromSeq}..${toSeq})`);
  const runs = new BlockRuns();
  let done = fromSeq; // writes fromSeq+1..done are accounted for
  for (const p of ctx.catalog.packs()) {
    if (p.lastSeq <= done) continue;
    if (p.firstSeq > toSeq) break;
    assert(p.firstSeq <= done + 1, `the packs after a held point ${fromSeq} form a chain (pack ${p.firstSeq}-${p.lastSeq} after seq ${done})`);
    const end = Math.min(toSeq, p.lastSeq);
    if (p.firstSeq === done + 1 && end === p.lastSeq) {
      for (const b of readPackBlocks(ctx.storage, p.path, volume)) runs.add(b, b);
    } else {
      journalBlocks(ctx, volume, done, end, runs);
    }
    done = end;
  }
  if (done < toSeq) journalBlocks(ctx, volume, done, toSeq, runs);
  return runs.extents(ctx.blockSize, size);
}

/** Adds the blocks the journal's writes fromSeq+1..toSeq touch in `volume`; every one must be there. */
function journalBlocks(ctx: DiffContext, volume: number, fromSeq: number, toSeq: number, runs: BlockRuns): void {
  const B = ctx.blockSize;
  const entry = ctx.index.findBySeq(fromSeq + 1) ?? ctx.index.last;
  let next = fromSeq + 1;
  const stop = ctx.journal.scan({
    fromSeq: fromSeq + 1,
    start: entry && entry.firstSeq <= fromSeq + 1 && entry.lastSeq >= fromSeq ? entry.journal : undefined,
    onRecord: (r) => {
      if (r.seq > toSeq) return false;
      if (r.seq !== next) return false; // a gap: reported below
      next++;
      if (r.volume === volume) runs.add(Math.floor(r.offset / B), Math.floor((r.offset + r.length - 1) / B));
    },
  });
  if (stop.kind === 'damaged') throw corrupt(stop.segment.path, stop.position, `${stop.reason} (needed for the writes after seq ${fromSeq})`);
  if (next <= toSeq) {
    throw corrupt(ctx.journal.dir, 0, `the journal does not hold write ${next}, needed for the changes from seq ${fromSeq} to seq ${toSeq}`);
  }
}

/** Count and bytes of a list of extents. */
export function extentBytes(extents: readonly Extent[]): number {
  let n = 0;
  for (const e of extents) n += e.length;
  return n;
}

/**
 * The blocks of one volume changed since a held point, for as long as it is open (its lease keeps
 * the point held). The answer for the latest end point asked is kept: a client walking a volume
 * with many block-status requests pays for one diff while no new write arrives.
 */
export class ChangesSince {
  private cached: { toSeq: number; extents: Extent[] } | null = null;

  constructor(
    private readonly ctx: DiffContext,
    private readonly volume: { index: number; size: number },
    readonly fromSeq: number,
    private release: (() => void) | null,
  ) {}

  /** The extents written after fromSeq up to write `toSeq` included (toSeq >= fromSeq). */
  extents(toSeq: number): readonly Extent[] {
    assert(this.release !== null, `changes since seq ${this.fromSeq} are read while open`);
    if (this.cached?.toSeq !== toSeq) this.cached = { toSeq, extents: changedExtents(this.ctx, this.volume.index, this.volume.size, this.fromSeq, toSeq) };
    return this.cached.extents;
  }

  close(): void {
    this.release?.();
    this.release = null;
  }
}
