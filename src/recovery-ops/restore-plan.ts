// The plan of a restore (`rewind restore ... --dry-run`): what it would read and write and about how
// long it would take, with nothing written. Per volume a restore reads the whole replica, every pack
// after the target (a pack holds every volume's blocks of its window, so each volume's restore reads
// it) and the journal writes from the base up to the target, and writes at most the volume's size
// (zero chunks of a regular file stay holes). The time comes from read rates measured now: a quick
// timed read of the replica and of a pack. Writing is not measured (a dry run writes nothing); a
// restore overlaps its writes with its reads, so the estimate assumes the output keeps up.
import { RECORD_HEADER_BYTES } from '../journal/record.js';
import type { History } from '../restore/history.js';
import type { PackRef } from '../restore/catalog.js';
import type { Storage, StorageFile } from '../storage/storage.js';

/** Bytes read to measure each rate (less when the restore itself would read less). */
const MEASURE_BYTES_MAX = 32 * 2 ** 20;
const MEASURE_CHUNK_BYTES = 4 * 2 ** 20;

export interface VolumePlan {
  volume: string;
  out: string;
  /** Bytes of the replica read (the volume's size). */
  replicaBytes: number;
  packs: number;
  packBytes: number;
  journalWrites: number;
  /** Bytes of journal records (headers and payloads) replayed. */
  journalBytes: number;
  /** At most this many bytes written (the volume's size). */
  writeBytes: number;
}

export interface ReadRates {
  replicaBytesPerSecond: number;
  /** Packs and journal: null when the restore reads no pack (the replica's rate is used). */
  packBytesPerSecond: number | null;
  measuredReplicaBytes: number;
  measuredPackBytes: number;
}

export interface RestorePlan {
  seq: number;
  volumes: VolumePlan[];
  replicaBytes: number;
  packBytes: number;
  journalBytes: number;
  writeBytes: number;
  rates: ReadRates;
  estimatedSeconds: number;
}

/** The plan of restoring `outputs` (volume, file) at the held point `seq`. Reads a little; writes nothing. */
export function planRestore(history: History, seq: number, outputs: readonly { volume: string; out: string }[]): RestorePlan {
  const volumes: VolumePlan[] = [];
  let samplePack: PackRef | null = null;
  for (const o of outputs) {
    const view = history.restoreView(o.volume, seq);
    try {
      const packs = view.packsAfterTarget();
      samplePack ??= packs[0] ?? null;
      const writes = view.journalWrites();
      volumes.push({
        volume: o.volume,
        out: o.out,
        replicaBytes: view.size,
        packs: packs.length,
        packBytes: packs.reduce((s, p) => s + history.storage.sizeOf(p.path), 0),
        journalWrites: writes.length,
        journalBytes: writes.reduce((s, w) => s + RECORD_HEADER_BYTES + w.length, 0),
        writeBytes: view.size,
      });
    } finally {
      view.close();
    }
  }
  const sum = (k: 'replicaBytes' | 'packBytes' | 'journalBytes' | 'writeBytes') => volumes.reduce((s, v) => s + v[k], 0);
  const totals = { replicaBytes: sum('replicaBytes'), packBytes: sum('packBytes'), journalBytes: sum('journalBytes'), writeBytes: sum('writeBytes') };
  const rates = measureRates(history, outputs[0]?.volume, samplePack, totals.replicaBytes, totals.packBytes);
  const historyRate = rates.packBytesPerSecond ?? rates.replicaBytesPerSecond;
  const estimatedSeconds = totals.replicaBytes / rates.replicaBytesPerSecond + (totals.packBytes + totals.journalBytes) / historyRate;
  return { seq, volumes, ...totals, rates, estimatedSeconds };
}

function measureRates(history: History, volume: string | undefined, pack: PackRef | null, replicaBytes: number, packBytes: number): ReadRates {
  const replica = volume === undefined ? null : history.volumes.byName(volume).replica;
  const r = replica ? timedRead(replica, Math.min(MEASURE_BYTES_MAX, replicaBytes)) : { bytes: 0, seconds: 0 };
  let p = { bytes: 0, seconds: 0 };
  if (pack) p = timedReadFile(history.storage, pack.path, Math.min(MEASURE_BYTES_MAX, packBytes));
  return {
    replicaBytesPerSecond: rate(r),
    packBytesPerSecond: p.bytes > 0 ? rate(p) : null,
    measuredReplicaBytes: r.bytes,
    measuredPackBytes: p.bytes,
  };
}

/** Bytes per second; a read too short to time counts as fast (a microsecond). */
function rate(m: { bytes: number; seconds: number }): number {
  return m.bytes === 0 ? Infinity : m.bytes / Math.max(m.seconds, 1e-6);
}

function timedRead(f: StorageFile, bytes: number): { bytes: number; seconds: number } {
  const buf = Buffer.allocUnsafe(Math.min(MEASURE_CHUNK_BYTES, Math.max(bytes, 1)));
  const t0 = performance.now();
  let done = 0;
  while (done < bytes) {
    const n = f.read(buf, done, 0, Math.min(buf.byteLength, bytes - done));
    if (n === 0) break;
    done += n;
  }
  return { bytes: done, seconds: (performance.now() - t0) / 1000 };
}

function timedReadFile(storage: Storage, path: string, bytes: number): { bytes: number; seconds: number } {
  const f = storage.open(path, 'read');
  try {
    return timedRead(f, bytes);
  } finally {
    f.close();
  }
}
