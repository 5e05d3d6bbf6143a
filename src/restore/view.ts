// A point-in-time view: the contents of one volume exactly after write N, read without copying the
// volume. It is the replica, with the blocks changed by every window that ends after N set back to
// their old contents (the earliest such window holds the right old bytes), and then the journal
// writes from the start of the window holding N (or from the replica's own point) up to N replayed.
//
// It stays right while a writer applies new windows: a read takes the replica bytes first and looks
// at the catalog after, and a window's pack is in the catalog before the replica is touched. It also
// stays right when consolidation merges packs after its point (a long-lived view: a clone's base):
// the merged pack holds the same old contents, and the view takes it in place of the ones it replaced.
import { assert, corrupt, targetOutOfRange } from '../errors.js';
import type { JournalReader, RecordRef } from '../journal/reader.js';
import type { Storage } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { Volume } from '../volumes/volume-set.js';
import type { Catalog, PackRef } from './catalog.js';
import type { PackSection } from '../increment/pack.js';
import type { PackCache } from './pack-cache.js';

export interface ViewContext {
  storage: Storage;
  blockSize: number;
  index: TransactionIndex;
  journal: JournalReader;
  catalog: Catalog;
  packs: PackCache;
  /** Highest sequence number a view may target (the newest acknowledged write). */
  lastSeq(): number;
  /** Sequence number the replica is known to include (read before anything else). */
  appliedSeq(): number;
}

const INDEX_WRITES_ABOVE = 32;

export class PointInTimeView {
  private _seq = 0;
  /** The replica stands at or after P for every block the packs below do not set back. */
  private base = 0;
  private writes: RecordRef[] = [];
  private writesByBlock: Map<number, number[]> | null = null;
  private readonly oldFrom = new Map<number, PackRef>();
  private horizon = 0;
  /** The packs after the target taken in, by path, and the catalog list they were taken from. */
  private readonly incorporated = new Set<string>();
  private seenList: readonly PackRef[] | null = null;
  private readonly verified = new Set<number>();
  private readonly scratch: Buffer;
  /** Ends the lease on the point this view reads (the lifecycle keeps it restorable until then). */
  private release: (() => void) | null = null;

  /**
   * `deferPacks`: do not load the packs after the target when seeking (the first read does); for a
   * restore, which reads them its own way (packsAfterTarget) and reads nothing through the view.
   * Without it a damaged pack fails the opening of the view, as it always has.
   */
  constructor(private readonly ctx: ViewContext, readonly volume: Volume, seq: number, private readonly deferPacks = false) {
    this.scratch = Buffer.allocUnsafe(ctx.blockSize);
    this.seek(seq);
  }

  /** Ends the view's lease; the view must not be read afterwards. */
  close(): void {
    this.release?.();
    this.release = null;
  }

  get seq(): number {
    return this._seq;
  }

  get size(): number {
    return this.volume.size;
  }

  /** Moves the view to the state exactly after write `seq` (0: before any write). */
  seek(seq: number): void {
    const last = this.ctx.lastSeq();
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > last) {
      throw targetOutOfRange(`seq ${seq} is outside the retained history 0..${last}`);
    }
    // The lease first: from here on the writer keeps this point (and a caller checks it is still held).
    this.release?.();
    this.release = this.ctx.catalog.lease(seq);
    const applied = this.ctx.appliedSeq();
    const packs = this.ctx.catalog.packs();
    const after = packs.filter((p) => p.lastSeq > seq);
    const base = Math.min(applied, after.length > 0 ? after[0].firstSeq - 1 : Infinity);
    if (base > seq) {
      this.close();
      throw targetOutOfRange(`seq ${seq} is no longer held: the oldest restorable point is seq ${base}`);
    }
    this._seq = seq;
    this.base = base;
    this.oldFrom.clear();
    this.incorporated.clear();
    this.seenList = packs;
    this.horizon = seq;
    // Deferred, refresh takes them in at the first read (horizon = seq: every pack after the target).
    if (!this.deferPacks) for (const p of after) this.incorporate(p);
    this.writes = this.collectWrites(base, seq);
    this.writesByBlock = null;
  }

  next(): boolean {
    if (this._seq >= this.ctx.lastSeq()) return false;
    this.seek(this._seq + 1);
    return true;
  }

  prev(): boolean {
    if (this._seq <= 0) return false;
    this.seek(this._seq - 1);
    return true;
  }

  /** How many single journal writes this view replays over the rolled-back replica. */
  get writesReplayed(): number {
    return this.writes.length;
  }

  /** Reads `length` bytes at `offset` of the volume as it was after write `seq`. */
  read(offset: number, length: number, out: Buffer = Buffer.allocUnsafe(length)): Buffer {
    const B = this.ctx.blockSize;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.volume.size) {
      throw targetOutOfRange(`read ${offset}+${length} is outside volume "${this.volume.name}" (${this.volume.size} bytes)`);
    }
    if (length === 0) return out.subarray(0, 0);
    // 1. The replica, first.
    const got = this.volume.replica.read(out, offset, 0, length);
    if (got < length) out.fill(0, got, length);
    // 2. Then the packs of windows that end after the target: old contents, earliest window wins.
    this.refresh();
    const end = offset + length;
    const firstBlock = Math.floor(offset / B);
    const lastBlock = Math.floor((end - 1) / B);
    if (this.oldFrom.size > 0) {
      const vol = this.volume.index;
      let lastRef: PackRef | null = null;
      let blocks: Map<number, { section: PackSection; index: number }> | null = null;
      for (let b = firstBlock; b <= lastBlock; b++) {
        const ref = this.oldFrom.get(b);
        if (!ref) continue;
        if (ref !== lastRef) {
          blocks = this.ctx.packs.get(ref.path).blocksOf(vol);
          lastRef = ref;
        }
        const at = blocks!.get(b);
        assert(at, `a view sets a block back from a pack that holds it (pack ${ref.path} has no block ${b} of volume ${vol})`);
        const from = Math.max(offset, b * B);
        const to = Math.min(end, (b + 1) * B);
        // A whole block is decoded in place; a part of one through the scratch block.
        const whole = to - from === B;
        if (!at.section.decode(at.index, 'old', whole ? out : this.scratch, whole ? from - offset : 0, B)) {
          throw corrupt(ref.path, 0, `malformed encoding of block ${b} (volume index ${vol})`);
        }
        if (!whole) this.scratch.copy(out, from - offset, from - b * B, to - b * B);
      }
    }
    // 3. Then the single writes after the base, up to the target, in order.
    for (const i of this.writesIn(firstBlock, lastBlock)) {
      const w = this.writes[i];
      const from = Math.max(offset, w.offset);
      const to = Math.min(end, w.offset + w.length);
      if (to <= from) continue;
      this.verify(w);
      this.ctx.journal.readPayload(w, out, from - offset, from - w.offset, to - from);
    }
    return out;
  }

  /**
   * The packs of the windows that end after the target, in sequence order, as the catalog lists
   * them now. The state after `seq` is the replica read before this call with, for every block
   * these packs change, the old contents from the earliest of them, then `journalWrites` replayed.
   */
  packsAfterTarget(): PackRef[] {
    const after = this.ctx.catalog.packs().filter((p) => p.lastSeq > this._seq);
    for (const p of after) assert(p.firstSeq > this.base, `pack ${p.firstSeq}-${p.lastSeq} starts after the view base ${this.base}`);
    return after;
  }

  /** The single journal writes (of this volume) replayed over the rolled-back replica, in order. */
  journalWrites(): readonly RecordRef[] {
    return this.writes;
  }

  /** Takes in packs that appeared since the last look. */
  private refresh(): void {
    const packs = this.ctx.catalog.packs();
    // A list changed other than by growing may have packs merged in place of ones this view reads
    // (those files go once no lease needs them): start again from the packs as they are now.
    if (packs !== this.seenList) {
      if (packs.some((p) => p.lastSeq > this._seq && p.lastSeq <= this.horizon && !this.incorporated.has(p.path))) {
        this.oldFrom.clear();
        this.incorporated.clear();
        this.horizon = this._seq;
      }
      this.seenList = packs;
    }
    if (packs.length === 0 || packs[packs.length - 1].lastSeq <= this.horizon) return;
    for (const p of packs) if (p.lastSeq > this.horizon) this.incorporate(p);
  }

  private incorporate(p: PackRef): void {
    if (p.lastSeq > this._seq) {
      assert(p.firstSeq > this.base, `pack ${p.firstSeq}-${p.lastSeq} starts after the view base ${this.base}`);
      const pack = this.ctx.packs.get(p.path);
      for (const b of pack.blocksOf(this.volume.index).keys()) if (!this.oldFrom.has(b)) this.oldFrom.set(b, p);
      this.incorporated.add(p.path);
    }
    this.horizon = Math.max(this.horizon, p.lastSeq);
  }

  private collectWrites(base: number, seq: number): RecordRef[] {
    const out: RecordRef[] = [];
    if (seq <= base) return out;
    const entry = this.ctx.index.findBySeq(base + 1) ?? this.ctx.index.last;
    const stop = this.ctx.journal.scan({
      fromSeq: base + 1,
      start: entry && entry.lastSeq >= base ? entry.journal : undefined,
      onRecord: (r) => {
        if (r.seq > seq) return false;
        if (r.seq > base && r.volume === this.volume.index) out.push(r);
      },
    });
    if (stop.kind === 'damaged') throw corrupt(stop.segment.path, stop.position, `${stop.reason} (needed for seq ${seq})`);
    return out;
  }

  /** Indices of the writes touching blocks [first, last], in sequence order. */
  private writesIn(first: number, last: number): number[] {
    const B = this.ctx.blockSize;
    if (this.writes.length <= INDEX_WRITES_ABOVE) return this.writes.map((_, i) => i);
    if (!this.writesByBlock) {
      const m = new Map<number, number[]>();
      this.writes.forEach((w, i) => {
        const lb = Math.floor((w.offset + w.length - 1) / B);
        for (let b = Math.floor(w.offset / B); b <= lb; b++) {
          const list = m.get(b);
          if (list) list.push(i);
          else m.set(b, [i]);
        }
      });
      this.writesByBlock = m;
    }
    const found = new Set<number>();
    if (last - first + 1 <= this.writesByBlock.size) {
      for (let b = first; b <= last; b++) for (const i of this.writesByBlock.get(b) ?? []) found.add(i);
    } else {
      for (const [b, list] of this.writesByBlock) if (b >= first && b <= last) for (const i of list) found.add(i);
    }
    return [...found].sort((a, b) => a - b);
  }

  private verify(w: RecordRef): void {
    if (this.verified.has(w.seq)) return;
    this.ctx.journal.payload(w);
    this.verified.add(w.seq);
  }
}
