// The tier's backlog: history files on disk that the tier does not hold yet. The writer's uploader
// measures it against its manifest; `rewind status` in another process against tier-shipped.json.
import { listSegments } from '../journal/segments.js';
import { joinPath } from '../storage/storage.js';
import type { StoreReader } from '../store/reader.js';
import type { Manifest } from './manifest.js';
import { readShipMarks, readTierConfig } from './tier-config.js';
import { parseTierUrl, storeLocation, tierUrl } from './url.js';
import type { ShipSource } from './ship-source.js';
import type { ShipMarks } from './tier-config.js';

export interface ShipBacklog {
  /** Bytes of applied packs and sealed journal segments not shipped yet. */
  bytes: number;
  /** The first write of the oldest of them (null: nothing waits). */
  oldestUnshippedSeq: number | null;
  /** Every pack ending at or before this seq is in the tier. */
  packsThrough: number;
  /** Every sealed segment ending at or before this seq is in the tier. */
  segmentsThrough: number;
}

type BacklogSource = Pick<ShipSource, 'storage' | 'appliedSeq' | 'packs' | 'sealedSegments'>;

export function shipBacklog(src: BacklogSource, manifest: Manifest | null, marks: ShipMarks): ShipBacklog {
  const packsThrough = manifest ? (manifest.packs.at(-1)?.lastSeq ?? 0) : marks.packsThrough;
  const segmentsThrough = manifest ? (manifest.segments.at(-1)?.lastSeq ?? 0) : marks.segmentsThrough;
  let bytes = 0;
  let oldest: number | null = null;
  const applied = src.appliedSeq();
  const waiting = [
    ...src.packs().filter((p) => p.lastSeq > packsThrough && p.lastSeq <= applied),
    ...src.sealedSegments().filter((s) => s.lastSeq > segmentsThrough),
  ];
  for (const f of waiting) {
    try {
      bytes += src.storage.sizeOf(f.path);
    } catch {
      continue; // gone meanwhile (a merge of packs shipped already)
    }
    oldest = oldest === null ? f.firstSeq : Math.min(oldest, f.firstSeq);
  }
  return { bytes, oldestUnshippedSeq: oldest, packsThrough, segmentsThrough };
}

/** The backlog of a store read from another process (`rewind status`), or null without a tier. */
export function readerTierBacklog(reader: StoreReader): (ShipBacklog & { location: string }) | null {
  const h = reader.history;
  const c = readTierConfig(h.storage, reader.dir);
  if (!c) return null;
  const b = shipBacklog({
    storage: h.storage,
    appliedSeq: () => h.index.appliedSeq,
    packs: () => h.catalog.packs(),
    sealedSegments: () => listSegments(h.storage, joinPath(reader.dir, 'journal')).flatMap((s) => (s.lastSeq === null ? [] : [{ firstSeq: s.firstSeq, lastSeq: s.lastSeq, path: s.path }])),
  }, null, readShipMarks(h.storage, reader.dir));
  return { location: tierUrl(storeLocation(parseTierUrl(c.url), c.storeId)), ...b };
}
