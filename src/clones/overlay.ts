// A clone's copy-on-write overlay: the blocks written to the clone, in place in a sparse file the
// size of the volume (`<NAME>.overlay`, block b at byte b × block size), and a log of which blocks it
// holds (`<NAME>.map`). A block not in the map reads from the clone's point in history instead.
//
// Map file: a 32-byte header, then 24-byte entries appended in order.
//   header: 'RWCM' u32 | version u16 | 32 u16 | block size u32 | zero u32 | volume size u64 | zero u32 | CRC32C(0..28) u32
//   entry:  'RWCE' u32 | kind u8 | zero u8 | zero u16 | value u64 | data CRC32C u32 | CRC32C(0..20) u32
//     kind 1 (block): the overlay holds block `value`; data CRC32C is the CRC of the block as written
//     kind 2 (flush): every entry before byte `value` of the map is verified: its block was durable
//                     in the overlay file before this entry was written (data CRC zero)
//
// Why a flushed write survives any crash, and an unflushed one leaves a block old or new, never
// garbage: a write goes to the overlay file first and its entry to the map after (both page cache).
// Entries are written when a block joins the overlay, and again on every rewrite until a flush
// verifies it. A flush syncs the overlay file, then appends a flush entry covering the map as it was
// before that sync, then syncs the map. On open the map is read up to its first bad entry (a torn
// tail is cut), entries covered by a flush entry are trusted, and each block that joined after the
// last flush is kept only if the overlay file holds exactly what its newest entry says (its CRC):
// otherwise the block reads from the clone's point again (the unflushed writes to it are lost). A
// process crash loses nothing (the page cache holds both files); power loss may lose unflushed
// writes: blocks that joined since the last flush go back to the clone's point, and a block rewritten
// in place since then may hold the old or new contents of each of its sectors, as a disk would.
// Opening after such a crash syncs the overlay and writes the map afresh (temp, sync, rename).
import { assert, closed, corrupt, RewindError } from '../errors.js';
import { crc32c, getU64, putU64, tag } from '../encoding/fields.js';
import { writeFileAtomic, type Storage, type StorageFile } from '../storage/storage.js';
import type { ClonePaths } from './clone-record.js';

const HEADER_BYTES = 32;
const ENTRY_BYTES = 24;
const MAP_VERSION = 1;
const HEADER_TAG = tag('RWCM');
const ENTRY_TAG = tag('RWCE');
const KIND_BLOCK = 1;
const KIND_FLUSH = 2;
/** A map longer than this many times its compacted size (and this floor) is rewritten at the next flush. */
const MAP_SLACK_FACTOR = 4;
const MAP_SLACK_FLOOR_BYTES = 1 << 20;

function header(blockSize: number, volumeSize: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32LE(HEADER_TAG, 0);
  h.writeUInt16LE(MAP_VERSION, 4);
  h.writeUInt16LE(HEADER_BYTES, 6);
  h.writeUInt32LE(blockSize, 8);
  putU64(h, 16, volumeSize);
  h.writeUInt32LE(crc32c(h.subarray(0, 28)), 28);
  return h;
}

function putEntry(buf: Buffer, at: number, kind: number, value: number, dataCrc: number): void {
  buf.fill(0, at, at + ENTRY_BYTES);
  buf.writeUInt32LE(ENTRY_TAG, at);
  buf.writeUInt8(kind, at + 4);
  putU64(buf, at + 8, value);
  buf.writeUInt32LE(dataCrc >>> 0, at + 16);
  buf.writeUInt32LE(crc32c(buf.subarray(at, at + 20)), at + 20);
}

/** The entry at `at`, or null where the map stops being whole (torn or never written). */
function getEntry(buf: Buffer, at: number): { kind: number; value: number; dataCrc: number } | null {
  if (at + ENTRY_BYTES > buf.byteLength) return null;
  if (buf.readUInt32LE(at) !== ENTRY_TAG || buf.readUInt32LE(at + 20) !== crc32c(buf.subarray(at, at + 20))) return null;
  const kind = buf.readUInt8(at + 4);
  if (kind !== KIND_BLOCK && kind !== KIND_FLUSH) return null;
  return { kind, value: getU64(buf, at + 8), dataCrc: buf.readUInt32LE(at + 16) };
}

/** The whole map for `blocks`, all verified: a block entry each, then a flush entry covering them. */
function compactedMap(blockSize: number, volumeSize: number, blocks: Iterable<number>): Buffer {
  const list = [...blocks].sort((a, b) => a - b);
  const buf = Buffer.alloc(HEADER_BYTES + (list.length + 1) * ENTRY_BYTES);
  header(blockSize, volumeSize).copy(buf, 0);
  let at = HEADER_BYTES;
  for (const b of list) {
    putEntry(buf, at, KIND_BLOCK, b, 0);
    at += ENTRY_BYTES;
  }
  putEntry(buf, at, KIND_FLUSH, at, 0);
  return buf;
}

/** Blocks a map names (verified or not), read without opening the overlay: for `clone list`. */
export function mapBlockCount(storage: Storage, paths: ClonePaths): number {
  if (!storage.exists(paths.map)) return 0;
  const f = storage.open(paths.map, 'read');
  try {
    const bytes = Buffer.allocUnsafe(f.size());
    f.read(bytes, 0);
    const seen = new Set<number>();
    for (let at = HEADER_BYTES, e = getEntry(bytes, at); e !== null; at += ENTRY_BYTES, e = getEntry(bytes, at)) if (e.kind === KIND_BLOCK) seen.add(e.value);
    return seen.size;
  } finally {
    f.close();
  }
}

export class Overlay {
  /** Blocks the overlay holds. */
  private readonly present = new Set<number>();
  /** Blocks whose newest map entry no flush has verified yet, with that entry's position. */
  private readonly unverified = new Map<number, number>();
  /** Where the next entry goes. */
  private mapEnd: number;
  /** Writes to the overlay file since the last sync began (rewrites in place need a sync too). */
  private dataDirty = false;
  private flushing: Promise<void> = Promise.resolve();
  /** A failed flush: the overlay takes no more writes (what reached the disk is unknown). */
  private failure: unknown = null;
  private closed = false;

  private constructor(
    private readonly storage: Storage,
    private readonly paths: ClonePaths,
    readonly blockSize: number,
    readonly volumeSize: number,
    private readonly data: StorageFile,
    private map: StorageFile,
    mapEnd: number,
  ) {
    this.mapEnd = mapEnd;
  }

  /** Creates an empty overlay (no block held), durably. Costs nothing per byte of the volume. */
  static async create(storage: Storage, paths: ClonePaths, blockSize: number, volumeSize: number): Promise<void> {
    const data = storage.open(paths.overlay, 'create');
    try {
      data.truncate(0);
      data.truncate(volumeSize); // sparse: a hole until written
      await data.sync();
    } finally {
      data.close();
    }
    await writeFileAtomic(storage, paths.map, compactedMap(blockSize, volumeSize, []), `${paths.map}.tmp-${process.pid}`);
  }

  /** Opens an overlay, recovering it after a crash (see the top of this file). */
  static async open(storage: Storage, paths: ClonePaths, blockSize: number, volumeSize: number): Promise<Overlay> {
    const data = storage.open(paths.overlay, 'write');
    let map: StorageFile | null = null;
    try {
      if (data.size() !== volumeSize) throw corrupt(paths.overlay, 0, `the overlay holds ${data.size()} bytes, not the volume's ${volumeSize}`);
      map = storage.open(paths.map, 'write');
      const bytes = Buffer.allocUnsafe(map.size());
      const got = map.read(bytes, 0);
      const expect = header(blockSize, volumeSize);
      if (got < HEADER_BYTES || !bytes.subarray(0, HEADER_BYTES).equals(expect)) {
        throw corrupt(paths.map, 0, `not a clone map for block size ${blockSize} and volume size ${volumeSize}`);
      }
      // Entries up to the first one that is not whole; the last flush entry says how far they are verified.
      const entries: { at: number; kind: number; value: number; dataCrc: number }[] = [];
      let end = HEADER_BYTES;
      let verifiedEnd = HEADER_BYTES;
      for (let e = getEntry(bytes, end); e !== null; e = getEntry(bytes, end)) {
        if (e.kind === KIND_FLUSH && e.value <= end && e.value > verifiedEnd) verifiedEnd = e.value;
        if (e.kind === KIND_BLOCK) entries.push({ at: end, ...e });
        end += ENTRY_BYTES;
      }
      const o = new Overlay(storage, paths, blockSize, volumeSize, data, map, end);
      const pending = new Map<number, number>();
      for (const e of entries) {
        if (e.value * blockSize >= volumeSize) throw corrupt(paths.map, e.at, `block ${e.value} is past the volume's end (${volumeSize} bytes)`);
        if (e.at < verifiedEnd) o.present.add(e.value);
        else pending.set(e.value, e.dataCrc);
      }
      // Blocks that joined after the last flush stay only if the overlay holds what their entry says.
      const block = Buffer.allocUnsafe(blockSize);
      for (const [b, dataCrc] of pending) {
        if (o.present.has(b)) continue; // rewritten in place: old or new, as a disk would have it
        if (data.read(block, b * blockSize) === blockSize && crc32c(block) === dataCrc) o.present.add(b);
      }
      if (pending.size > 0 || end !== got) await o.rewriteMap();
      return o;
    } catch (err) {
      map?.close();
      data.close();
      throw err;
    }
  }

  has(block: number): boolean {
    return this.present.has(block);
  }

  /** Blocks the overlay holds. */
  get blockCount(): number {
    return this.present.size;
  }

  /** Bytes of the volume the overlay holds (whole blocks). */
  get usedBytes(): number {
    return this.present.size * this.blockSize;
  }

  /** How many of `count` blocks from `first` the overlay does not hold yet. */
  missing(first: number, count: number): number {
    let n = 0;
    for (let b = first; b < first + count; b++) if (!this.present.has(b)) n++;
    return n;
  }

  /** Reads `length` bytes of the volume at `position` from the overlay file into `out` at `at` (blocks it holds). */
  read(out: Buffer, at: number, position: number, length: number): void {
    const got = this.data.read(out, position, at, length);
    if (got < length) out.fill(0, at + got, at + length);
  }

  /** Writes whole blocks from `firstBlock` (`data` a multiple of the block size), then their map entries. */
  write(firstBlock: number, data: Buffer): void {
    this.checkWritable();
    const B = this.blockSize;
    assert(data.byteLength % B === 0 && data.byteLength > 0, `an overlay write is whole blocks (${data.byteLength} bytes, block ${B})`);
    const count = data.byteLength / B;
    assert((firstBlock + count) * B <= this.volumeSize, `an overlay write ends inside the volume (block ${firstBlock}+${count})`);
    this.dataDirty = true;
    this.data.write(data, firstBlock * B);
    // Entries for blocks new to the overlay, and for rewrites of blocks no flush has verified yet.
    let n = 0;
    for (let i = 0; i < count; i++) if (!this.present.has(firstBlock + i) || this.unverified.has(firstBlock + i)) n++;
    if (n === 0) return;
    const entries = Buffer.allocUnsafe(n * ENTRY_BYTES);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const b = firstBlock + i;
      if (this.present.has(b) && !this.unverified.has(b)) continue;
      putEntry(entries, at, KIND_BLOCK, b, crc32c(data.subarray(i * B, (i + 1) * B)));
      at += ENTRY_BYTES;
    }
    this.map.write(entries, this.mapEnd);
    // Only once the entries are written: a failed write leaves the map as it was (the next one overwrites).
    at = this.mapEnd;
    for (let i = 0; i < count; i++) {
      const b = firstBlock + i;
      if (this.present.has(b) && !this.unverified.has(b)) continue;
      this.present.add(b);
      this.unverified.set(b, at);
      at += ENTRY_BYTES;
    }
    this.mapEnd += entries.byteLength;
  }

  /** Makes every write to the overlay before the call durable (one at a time; see the top of this file). */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushNow(): Promise<void> {
    this.checkWritable();
    const cover = this.mapEnd;
    if (!this.dataDirty && this.unverified.size === 0) return;
    try {
      this.dataDirty = false;
      await this.data.sync();
      if (this.unverified.size === 0) return;
      const entry = Buffer.allocUnsafe(ENTRY_BYTES);
      putEntry(entry, 0, KIND_FLUSH, cover, 0);
      this.map.write(entry, this.mapEnd);
      this.mapEnd += ENTRY_BYTES;
      await this.map.sync();
    } catch (err) {
      this.failure = err;
      throw err;
    }
    // Blocks rewritten during the sync have newer entries, past `cover`: they stay unverified.
    for (const [b, at] of this.unverified) if (at < cover) this.unverified.delete(b);
    if (this.mapEnd > MAP_SLACK_FLOOR_BYTES && this.mapEnd > MAP_SLACK_FACTOR * (HEADER_BYTES + (this.present.size + 1) * ENTRY_BYTES)) {
      await this.rewriteMap();
    }
  }

  /** Syncs the overlay, then replaces the map by one entry per block held, all verified. */
  private async rewriteMap(): Promise<void> {
    await this.data.sync();
    await writeFileAtomic(this.storage, this.paths.map, compactedMap(this.blockSize, this.volumeSize, this.present), `${this.paths.map}.tmp-${process.pid}`);
    this.map.close();
    this.map = this.storage.open(this.paths.map, 'write');
    this.mapEnd = this.map.size();
    this.unverified.clear();
  }

  private checkWritable(): void {
    if (this.closed) throw closed(`clone overlay ${this.paths.overlay}`);
    if (this.failure) {
      throw new RewindError('IO', `clone overlay ${this.paths.overlay}: a flush failed (${(this.failure as Error).message}); it takes no more writes until the clone is opened again`);
    }
  }

  /** Flushes (unless a flush failed) and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.failure) await this.flush();
    } finally {
      this.closed = true;
      this.map.close();
      this.data.close();
    }
  }

  /** Closes the files without flushing, as a crash would (for tests and simulations). */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.map.close();
      this.data.close();
    } catch {
      // a crash does not clean up
    }
  }
}
