// The catalog of increment packs a reader can use: the chain of packs on disk (src/lifecycle/held.ts
// chainOf: where consolidation left both a merged pack and the packs it replaces, the merged one),
// including the pack of a window being applied right now (complete before the replica is touched).
// A writer keeps its catalog in memory and changes it as windows are applied and history is
// consolidated or retired; a reader in another process lists the increments directory.
//
// Leases: a view or a restore in the writer's process leases the point it reads, and the lifecycle
// does not consolidate or retire history that would take that point away until the lease ends.
import { assert } from '../errors.js';
import { listPacks } from '../increment/pack.js';
import { chainOf } from '../lifecycle/held.js';
import type { LeaseFiles } from '../lifecycle/leases.js';
import type { Storage } from '../storage/storage.js';
import { joinPath } from '../storage/storage.js';

export interface PackRef {
  firstSeq: number;
  lastSeq: number;
  path: string;
}

export interface Catalog {
  /** The chain of packs in sequence order. Readers call it after reading the replica. */
  packs(): readonly PackRef[];
  /** Keeps the point after write `seq` restorable until the returned function is called. */
  lease(seq: number): () => void;
}

/** Packs the writer announces as soon as they are durable, and changes as history is consolidated. */
export class MemoryCatalog implements Catalog {
  private list: PackRef[] = [];
  private readonly leases = new Map<number, number>();
  private leaseCount = 0;

  add(p: PackRef): void {
    const last = this.list[this.list.length - 1];
    // The writer adds packs in window order, from an index already checked for gaps.
    assert(!last || p.firstSeq === last.lastSeq + 1, `pack ${p.firstSeq}-${p.lastSeq} follows pack ${last?.firstSeq}-${last?.lastSeq}`);
    this.list.push(p);
  }

  packs(): readonly PackRef[] {
    return this.list;
  }

  /** Puts `merged` in place of the packs it covers exactly; returns them. */
  replace(merged: PackRef): PackRef[] {
    const from = this.list.findIndex((p) => p.firstSeq === merged.firstSeq);
    const to = this.list.findIndex((p) => p.lastSeq === merged.lastSeq);
    assert(from >= 0 && to > from, `a merged pack ${merged.firstSeq}-${merged.lastSeq} covers whole packs of the catalog`);
    const replaced = this.list.slice(from, to + 1);
    // A new array: a reader holding the old list keeps a consistent chain.
    this.list = [...this.list.slice(0, from), merged, ...this.list.slice(to + 1)];
    return replaced;
  }

  /** Takes the `count` oldest packs out; returns them. */
  dropOldest(count: number): PackRef[] {
    assert(count >= 0 && count <= this.list.length, `drops at most the ${this.list.length} packs there are (${count})`);
    const dropped = this.list.slice(0, count);
    this.list = this.list.slice(count);
    return dropped;
  }

  lease(seq: number): () => void {
    assert(Number.isSafeInteger(seq) && seq >= 0, `a lease is on a point (${seq})`);
    this.leases.set(seq, (this.leases.get(seq) ?? 0) + 1);
    this.leaseCount++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.leaseCount--;
      const n = this.leases.get(seq)! - 1;
      if (n === 0) this.leases.delete(seq);
      else this.leases.set(seq, n);
    };
  }

  /** The oldest leased point (Infinity: none), which consolidation and retirement must keep. */
  oldestLease(): number {
    let min = Infinity;
    for (const seq of this.leases.keys()) if (seq < min) min = seq;
    return min;
  }

  /** Every leased point, ascending. */
  leasedPoints(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  get activeLeases(): number {
    return this.leaseCount;
  }
}

/**
 * Packs as the increments directory shows them now (another process may be adding or consolidating).
 * Its leases are files the writer reads (src/lifecycle/leases.ts).
 */
export class DirectoryCatalog implements Catalog {
  /** `leases`: where this reader's leases go for the writer to see (none: it takes none). */
  constructor(private readonly storage: Storage, private readonly dir: string, private readonly leases?: LeaseFiles) {}
  packs(): readonly PackRef[] {
    const files = listPacks(this.storage, this.dir).map((p) => ({ firstSeq: p.firstSeq, lastSeq: p.lastSeq, path: joinPath(this.dir, p.name) }));
    return chainOf(files).chain;
  }
  lease(seq: number): () => void {
    return this.leases ? this.leases.take(seq) : () => undefined;
  }
}
