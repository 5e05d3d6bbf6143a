// `rewind status --from s3://...`: what a store's tier holds, from its manifest alone.
import { isoTime } from '../units.js';
import type { Manifest } from './manifest.js';
import { newestPoint, oldestPoint } from './restore-plan.js';

export interface TierStatusReport {
  tier: string;
  storeId: string;
  /** The manifest's serial number and when it was committed. */
  serial: number;
  written: string;
  volumes: { name: string; size: number }[];
  blockSize: number;
  retention: string;
  /** The oldest and newest points a restore from the tier can reach (null: none yet). */
  oldestRestorable: { seq: number } | null;
  newestRestorable: { seq: number } | null;
  bases: { seq: number; time: string }[];
  packs: number;
  segments: number;
  /** Every pack ending at or before this seq, and every sealed segment, is in the tier. */
  packsThrough: number;
  segmentsThrough: number;
  /** Bytes of the objects the manifest lists (shared base chunks once). */
  bytes: number;
}

export function tierStatus(m: Manifest, where: string): TierStatusReport {
  const seen = new Set<string>();
  let bytes = m.index?.bytes ?? 0;
  for (const o of [...m.packs, ...m.segments]) bytes += o.bytes;
  for (const b of m.bases) for (const v of b.volumes) for (const c of v.chunks) if (c && !seen.has(c.key)) {
    seen.add(c.key);
    bytes += c.bytes;
  }
  const newest = newestPoint(m);
  const oldest = oldestPoint(m);
  return {
    tier: where,
    storeId: m.storeId,
    serial: m.serial,
    written: m.written,
    volumes: m.store.volumes,
    blockSize: m.store.blockSize,
    retention: m.store.retain,
    oldestRestorable: oldest < 0 ? null : { seq: oldest },
    newestRestorable: newest < 0 ? null : { seq: newest },
    bases: m.bases.map((b) => ({ seq: b.seq, time: isoTime(b.time) })),
    packs: m.packs.length,
    segments: m.segments.length,
    packsThrough: m.packs.at(-1)?.lastSeq ?? 0,
    segmentsThrough: m.segments.at(-1)?.lastSeq ?? 0,
    bytes,
  };
}
