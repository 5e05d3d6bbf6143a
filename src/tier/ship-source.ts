// What the uploader reads from a store being written: its history files, its windows and views of
// its past. A narrow interface, so the uploader knows nothing of the engine's insides, and the engine
// nothing of the tier (the writer wires one to the other in `rewind serve`).
import type { StoreConfig } from '../config.js';
import { listSegments } from '../journal/segments.js';
import type { RetentionPolicy } from '../lifecycle/retention.js';
import type { PackRef } from '../restore/catalog.js';
import { joinPath, type Storage } from '../storage/storage.js';
import type { Store } from '../store/store.js';
import type { TxEntry } from '../transactions/transactions.js';

export interface SealedFile {
  firstSeq: number;
  lastSeq: number;
  path: string;
}

export interface ShipSource {
  readonly storage: Storage;
  readonly config: StoreConfig;
  /** The replica stands after this write: packs up to it are complete and indexed. */
  appliedSeq(): number;
  /** The chain of packs, oldest first (the lifecycle may merge or drop the oldest meanwhile). */
  packs(): readonly PackRef[];
  /** Sealed journal segments, oldest first. */
  sealedSegments(): SealedFile[];
  /** The transaction index entries, oldest first. */
  windows(): readonly TxEntry[];
  /** Reads a volume as it was after write `seq` (a leased view). */
  openView(volume: string, seq: number): { read(offset: number, length: number, out?: Buffer): Buffer; close(): void };
  /** The store's retention policy now. */
  retention(): RetentionPolicy;
}

export function storeShipSource(store: Store): ShipSource {
  const h = store.history;
  const journalDir = joinPath(store.dir, 'journal');
  return {
    storage: h.storage,
    config: store.config,
    appliedSeq: () => store.appliedSeq,
    packs: () => h.catalog.packs(),
    sealedSegments: () => listSegments(h.storage, journalDir).flatMap((s) => (s.lastSeq === null ? [] : [{ firstSeq: s.firstSeq, lastSeq: s.lastSeq, path: s.path }])),
    windows: () => h.index.entries,
    openView: (volume, seq) => h.view(volume, seq),
    retention: () => store.policy.retain,
  };
}
