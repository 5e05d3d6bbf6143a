// The dirty-region log: where production may differ from the replica and the journal in ways the
// journal no longer shows. Recovery rebuilds only the regions written after the applied point (the
// journal lists them); this file adds what the journal cannot: the extents of records cut off its
// tail (written to production, maybe, but no longer in the journal), or "every volume in full" when
// a rebuild in full was started (so a crash during it cannot leave production half rebuilt and
// the next recovery rebuilding less). It exists only while a rebuild is owed: written before the
// journal is cut (or the full rebuild starts), removed once production is rebuilt and synced.
//
// <store>/production.dirty (little-endian), written whole (temp file, sync, rename, sync dir)
//   0 u32 magic 'RWDL'      4 u8 version (1)   5 u8 flags (bit 0: every volume in full)   6 u16 0
//   8 u32 extent count n   12 u32 0
//  16 n extents of 16 bytes: u16 volume index, u16 0, u32 length, u64 volume offset
//  16 + 16n u32 CRC32C of all the bytes before it
import { crc32c, getU64, putU64, tag } from '../encoding/fields.js';
import { decodeRecordHeader, RECORD_HEADER_BYTES } from '../journal/record.js';
import { joinPath, readWholeFile, writeFileAtomic, type Storage } from '../storage/storage.js';

export const DIRTY_LOG_FILE = 'production.dirty';
const MAGIC = tag('RWDL');
const VERSION = 1;
const HEADER_BYTES = 16;
const EXTENT_BYTES = 16;
const FLAG_ALL = 1;
/** More extents than this are kept as "every volume in full" (a rebuild of that many is no cheaper). */
export const DIRTY_EXTENTS_MAX = 65_536;

export interface DirtyExtent {
  volume: number;
  offset: number;
  length: number;
}

/** Regions of production to take from the replica: `all` means every volume in full. */
export interface DirtyRegions {
  all: boolean;
  extents: DirtyExtent[];
  /** Why every volume must be rebuilt in full (for the log), when `all`. */
  reason?: string;
}

export function encodeDirtyLog(d: DirtyRegions): Buffer {
  const n = d.all ? 0 : d.extents.length;
  const buf = Buffer.alloc(HEADER_BYTES + n * EXTENT_BYTES + 4);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt8(VERSION, 4);
  buf.writeUInt8(d.all ? FLAG_ALL : 0, 5);
  buf.writeUInt32LE(n, 8);
  for (let i = 0; i < n; i++) {
    const e = d.extents[i];
    const at = HEADER_BYTES + i * EXTENT_BYTES;
    buf.writeUInt16LE(e.volume, at);
    buf.writeUInt32LE(e.length, at + 4);
    putU64(buf, at + 8, e.offset);
  }
  buf.writeUInt32LE(crc32c(buf.subarray(0, buf.byteLength - 4)), buf.byteLength - 4);
  return buf;
}

/** Decodes a dirty-region log, or says why it is not one. */
export function decodeDirtyLog(buf: Buffer): DirtyRegions | string {
  if (buf.byteLength < HEADER_BYTES + 4) return 'too short';
  if (buf.readUInt32LE(0) !== MAGIC) return 'bad magic';
  if (buf.readUInt8(4) !== VERSION) return `version ${buf.readUInt8(4)} is not supported`;
  const n = buf.readUInt32LE(8);
  if (buf.byteLength !== HEADER_BYTES + n * EXTENT_BYTES + 4) return `holds ${buf.byteLength} bytes, not the ${HEADER_BYTES + n * EXTENT_BYTES + 4} of ${n} extents`;
  if (crc32c(buf.subarray(0, buf.byteLength - 4)) !== buf.readUInt32LE(buf.byteLength - 4)) return 'checksum mismatch';
  const extents: DirtyExtent[] = [];
  for (let i = 0; i < n; i++) {
    const at = HEADER_BYTES + i * EXTENT_BYTES;
    extents.push({ volume: buf.readUInt16LE(at), length: buf.readUInt32LE(at + 4), offset: getU64(buf, at + 8) });
  }
  const all = (buf.readUInt8(5) & FLAG_ALL) !== 0;
  return { all, extents, reason: all ? `${DIRTY_LOG_FILE} asks for it (a record cut off the journal could not be read, or a rebuild in full was under way)` : undefined };
}

/** The log of the store at `dir`, or null when no rebuild is owed. A damaged log asks for everything. */
export function readDirtyLog(storage: Storage, dir: string): DirtyRegions | null {
  const path = joinPath(dir, DIRTY_LOG_FILE);
  if (!storage.exists(path)) return null;
  const d = decodeDirtyLog(readWholeFile(storage, path));
  return typeof d === 'string' ? { all: true, extents: [], reason: `${path} is unreadable (${d})` } : d;
}

/** Adds regions to the log (durably) before anything that needs them to be rebuilt happens. */
export async function addDirtyRegions(storage: Storage, dir: string, add: DirtyRegions): Promise<void> {
  const had = readDirtyLog(storage, dir);
  const extents = [...(had?.extents ?? []), ...add.extents];
  const all = add.all || (had?.all ?? false) || extents.length > DIRTY_EXTENTS_MAX;
  await writeFileAtomic(storage, joinPath(dir, DIRTY_LOG_FILE), encodeDirtyLog({ all, extents: all ? [] : extents }));
}

/** Production is rebuilt and synced: nothing is owed any more. */
export async function clearDirtyLog(storage: Storage, dir: string): Promise<void> {
  const path = joinPath(dir, DIRTY_LOG_FILE);
  if (!storage.exists(path)) return;
  storage.remove(path);
  await storage.syncDir(dir);
}

/**
 * The extents of the journal records in `bytes` (cut off the journal's tail, starting at a record).
 * A record torn in its payload still names its extent (its header is whole and checked); a header
 * that cannot be read hides where its write went, so then every volume must be rebuilt in full.
 * `bytes` null: the records are not known at all (a whole segment set aside).
 */
export function cutExtents(bytes: Buffer | null): DirtyRegions {
  if (bytes === null) return { all: true, extents: [], reason: 'a journal segment was set aside' };
  const extents: DirtyExtent[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const h = decodeRecordHeader(bytes, at);
    if (typeof h === 'string') return { all: true, extents: [], reason: `a record cut off the journal cannot be read (${h})` };
    extents.push({ volume: h.volume, offset: h.offset, length: h.length });
    at += RECORD_HEADER_BYTES + h.length;
  }
  return { all: false, extents };
}

/** Extents of each volume, sorted and with overlapping or touching ones joined. */
export function mergeExtents(extents: DirtyExtent[]): Map<number, { offset: number; length: number }[]> {
  const byVolume = new Map<number, { offset: number; length: number }[]>();
  const sorted = [...extents].sort((a, b) => a.volume - b.volume || a.offset - b.offset);
  for (const e of sorted) {
    if (e.length === 0) continue;
    let runs = byVolume.get(e.volume);
    if (!runs) byVolume.set(e.volume, (runs = []));
    const last = runs[runs.length - 1];
    if (last && e.offset <= last.offset + last.length) last.length = Math.max(last.length, e.offset + e.length - last.offset);
    else runs.push({ offset: e.offset, length: e.length });
  }
  return byVolume;
}
