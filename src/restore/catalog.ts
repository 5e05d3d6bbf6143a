// The catalog of increment packs a reader can use: every pack that exists, including the one of a
// window being applied right now (its pack is complete before the replica is touched). A writer
// keeps its catalog in memory; a reader in another process lists the increments directory.
import { assert } from '../errors.js';
import { listPacks } from '../increment/pack.js';
import type { Storage } from '../storage/storage.js';
import { joinPath } from '../storage/storage.js';

export interface PackRef {
  firstSeq: number;
  lastSeq: number;
  path: string;
}

export interface Catalog {
  /** All known packs in sequence order. Readers call it after reading the replica. */
  packs(): readonly PackRef[];
}

/** Packs the writer announces as soon as they are durable. */
export class MemoryCatalog implements Catalog {
  private readonly list: PackRef[] = [];
  add(p: PackRef): void {
    const last = this.list[this.list.length - 1];
    // The writer adds packs in window order, from an index already checked for gaps.
    assert(!last || p.firstSeq === last.lastSeq + 1, `pack ${p.firstSeq}-${p.lastSeq} follows pack ${last?.firstSeq}-${last?.lastSeq}`);
    this.list.push(p);
  }
  packs(): readonly PackRef[] {
    return this.list;
  }
}

/** Packs as the increments directory shows them now (another process may be adding). */
export class DirectoryCatalog implements Catalog {
  constructor(private readonly storage: Storage, private readonly dir: string) {}
  packs(): readonly PackRef[] {
    return listPacks(this.storage, this.dir).map((p) => ({ firstSeq: p.firstSeq, lastSeq: p.lastSeq, path: joinPath(this.dir, p.name) }));
  }
}
