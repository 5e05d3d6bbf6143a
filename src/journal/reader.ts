// Reading the journal: records in sequence order from any point, with their payloads on demand.
// Used by the writer's recovery and, concurrently with a running writer, by restores, views and
// verify in other processes: a reader never changes a file and treats a half-written last record
// as the end of the journal.
import { crc32c } from '../encoding/fields.js';
import { corrupt } from '../errors.js';
import { lruGet } from '../lru.js';
import type { Storage, StorageFile } from '../storage/storage.js';
import { decodeRecordHeader, decodeSegmentHeader, RECORD_HEADER_BYTES, RECORD_MAGIC, SEGMENT_HEADER_BYTES, type RecordHeader } from './record.js';
import { listSegments, type SegmentFile } from './segments.js';

/** A journaled write: its indicia and where its record lives. */
export interface RecordRef extends RecordHeader {
  /** First sequence number of the segment holding the record (its identity across renames). */
  segment: number;
  /** Byte position of the record header in the segment. */
  position: number;
}

export type ScanStop =
  | { kind: 'end'; segment: number; position: number }
  /** An incomplete or unverifiable record at the very end of the last segment (a write in progress or torn by a crash). */
  | { kind: 'torn'; segment: SegmentFile; position: number; reason: string }
  /** A bad record with more journal after it: damage. */
  | { kind: 'damaged'; segment: SegmentFile; position: number; reason: string };

export interface ScanOptions {
  /** Skip records below this sequence number. */
  fromSeq?: number;
  /** Start at a known record position instead of searching (faster). */
  start?: { segment: number; position: number };
  /** Check every payload's CRC32C (reads the payloads). */
  verifyPayload?: boolean;
  /** Called for every record from fromSeq on; return false to stop. `payload` is given only with verifyPayload and is valid during the call. */
  onRecord(ref: RecordRef, payload?: Buffer): boolean | void;
}

const CHUNK_BYTES = 1 << 20;

export class JournalReader {
  private cached: SegmentFile[] | null = null;
  private readonly files = new Map<number, StorageFile>();

  constructor(private readonly storage: Storage, readonly dir: string) {}

  segments(refresh = false): SegmentFile[] {
    if (refresh || !this.cached) this.cached = listSegments(this.storage, this.dir);
    return this.cached;
  }

  /** A cached handle on a segment, by its first sequence number (for the synchronous reads of this reader). */
  file(segment: number): StorageFile {
    const cached = lruGet(this.files, segment);
    if (cached) return cached;
    const f = this.openSegment(segment);
    if (this.files.size >= 16) {
      // Least recently used first. Only synchronous reads use cached handles, so none is in use now.
      const [oldest, handle] = this.files.entries().next().value!;
      handle.close();
      this.files.delete(oldest);
    }
    this.files.set(segment, f);
    return f;
  }

  /** A new handle on a segment, following a rename from -open to sealed; the caller closes it. */
  openSegment(segment: number): StorageFile {
    for (let attempt = 0; attempt < 3; attempt++) {
      const s = this.segments(attempt > 0).find((x) => x.firstSeq === segment);
      if (!s) continue;
      try {
        return this.storage.open(s.path, 'read');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw corrupt(`${this.dir}`, 0, `journal segment starting at seq ${segment} is missing`);
  }

  /** Copies `length` payload bytes of a record, starting `skip` bytes into the payload. */
  readPayload(ref: RecordRef, dst: Uint8Array, dstOffset: number, skip: number, length: number): void {
    const n = this.file(ref.segment).read(dst, ref.position + RECORD_HEADER_BYTES + skip, dstOffset, length);
    if (n !== length) throw corrupt(this.pathOf(ref.segment), ref.position, `record seq ${ref.seq} is cut short`);
  }

  /** Reads and verifies a record's whole payload. */
  payload(ref: RecordRef): Buffer {
    const buf = Buffer.allocUnsafe(ref.length);
    this.readPayload(ref, buf, 0, 0, ref.length);
    if (crc32c(buf) !== ref.payloadCrc) throw corrupt(this.pathOf(ref.segment), ref.position, `payload checksum mismatch for seq ${ref.seq}`);
    return buf;
  }

  /** Walks records in order until the end of the journal, a damaged record, or onRecord returns false. */
  scan(opts: ScanOptions): ScanStop {
    const segs = this.segments(true);
    if (segs.length === 0) return { kind: 'end', segment: 0, position: 0 };
    let index: number;
    let position: number;
    if (opts.start) {
      index = segs.findIndex((s) => s.firstSeq === opts.start!.segment);
      if (index < 0) throw corrupt(this.dir, 0, `journal segment starting at seq ${opts.start.segment} is missing`);
      position = opts.start.position;
    } else {
      const from = opts.fromSeq ?? 1;
      index = 0;
      for (let i = 0; i < segs.length; i++) if (segs[i].firstSeq <= from) index = i;
      position = SEGMENT_HEADER_BYTES;
    }
    const buf = new ChunkReader();
    let prevLast: number | null = null;
    for (; index < segs.length; index++) {
      const seg = segs[index];
      const last = index === segs.length - 1;
      const file = this.file(seg.firstSeq);
      const size = file.size();
      buf.reset(file);
      if (position === SEGMENT_HEADER_BYTES || position === 0) {
        const h = decodeSegmentHeader(buf.get(0, SEGMENT_HEADER_BYTES));
        if (typeof h === 'string') {
          if (last && size < SEGMENT_HEADER_BYTES) return { kind: 'torn', segment: seg, position: 0, reason: h };
          return { kind: 'damaged', segment: seg, position: 0, reason: h };
        }
        if (h.firstSeq !== seg.firstSeq) return { kind: 'damaged', segment: seg, position: 0, reason: `segment header says first seq ${h.firstSeq}, file name says ${seg.firstSeq}` };
        if (prevLast !== null && seg.firstSeq !== prevLast + 1) return { kind: 'damaged', segment: seg, position: 0, reason: `segment starts at seq ${seg.firstSeq} but the one before it ends at seq ${prevLast}` };
        position = SEGMENT_HEADER_BYTES;
      }
      let expected: number | null = position === SEGMENT_HEADER_BYTES ? seg.firstSeq : null;
      let lastSeen = seg.firstSeq - 1;
      while (position < size) {
        // A bad record at the end of the last segment is a torn tail (a write in progress, or cut by a
        // crash); with a good record after it, it is damage.
        const bad = (reason: string, end: number): ScanStop =>
          last && (end >= size || !this.goodRecordAfter(file, position + 1, size, expected))
            ? { kind: 'torn', segment: seg, position, reason }
            : { kind: 'damaged', segment: seg, position, reason };
        const head = buf.get(position, Math.min(RECORD_HEADER_BYTES, size - position));
        const h = decodeRecordHeader(head);
        if (typeof h === 'string') return bad(h, head.byteLength < RECORD_HEADER_BYTES ? size : position + RECORD_HEADER_BYTES);
        const end = position + RECORD_HEADER_BYTES + h.length;
        if (end > size) return bad(`record seq ${h.seq} is cut short`, size);
        if (expected !== null && h.seq !== expected) return bad(`sequence number ${h.seq} where ${expected} was expected`, end);
        expected = h.seq + 1;
        lastSeen = h.seq;
        const ref: RecordRef = { ...h, segment: seg.firstSeq, position };
        let payload: Buffer | undefined;
        if (opts.verifyPayload) {
          payload = buf.get(position + RECORD_HEADER_BYTES, h.length);
          if (crc32c(payload) !== h.payloadCrc) return bad(`payload checksum mismatch for seq ${h.seq}`, end);
        }
        if (h.seq >= (opts.fromSeq ?? 0) && opts.onRecord(ref, payload) === false) return { kind: 'end', segment: seg.firstSeq, position };
        position = end;
      }
      if (seg.lastSeq !== null && lastSeen !== seg.lastSeq) {
        return { kind: 'damaged', segment: seg, position, reason: `sealed segment ends at seq ${lastSeen}, its name says ${seg.lastSeq}` };
      }
      if (last) return { kind: 'end', segment: seg.firstSeq, position };
      prevLast = lastSeen;
      position = SEGMENT_HEADER_BYTES;
    }
    return { kind: 'end', segment: segs[segs.length - 1].firstSeq, position };
  }

  /** Is there a decodable record header (with a plausible sequence number) anywhere in [from, size)? */
  private goodRecordAfter(file: StorageFile, from: number, size: number, minSeq: number | null): boolean {
    const magic = Buffer.alloc(4);
    magic.writeUInt32LE(RECORD_MAGIC, 0);
    const buf = Buffer.allocUnsafe(CHUNK_BYTES + RECORD_HEADER_BYTES);
    for (let at = from; at < size; at += CHUNK_BYTES) {
      const n = file.read(buf, at, 0, Math.min(buf.byteLength, size - at));
      let i = buf.subarray(0, n).indexOf(magic);
      while (i >= 0 && i < CHUNK_BYTES) {
        const h = decodeRecordHeader(buf.subarray(0, n), i);
        if (typeof h !== 'string' && (minSeq === null || h.seq >= minSeq)) return true;
        i = buf.subarray(0, n).indexOf(magic, i + 1);
      }
    }
    return false;
  }

  /** The file a segment lives in (for messages). */
  pathOf(segment: number): string {
    return this.segments().find((s) => s.firstSeq === segment)?.path ?? this.segments(true).find((s) => s.firstSeq === segment)?.path ?? `${this.dir}/segment ${segment}`;
  }

  closeFiles(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
  }
}

/** Sequential reads through one large buffer. */
class ChunkReader {
  private file: StorageFile | null = null;
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private start = 0;
  private end = 0;

  reset(file: StorageFile): void {
    this.file = file;
    this.start = this.end = 0;
  }

  /** Bytes [pos, pos+len) (fewer at end of file); valid until the next call. */
  get(pos: number, len: number): Buffer {
    if (pos >= this.start && pos + len <= this.end) return this.buf.subarray(pos - this.start, pos - this.start + len);
    if (len > this.buf.byteLength) this.buf = Buffer.allocUnsafe(Math.max(len, this.buf.byteLength * 2));
    const n = this.file!.read(this.buf, pos, 0, Math.max(len, CHUNK_BYTES));
    this.start = pos;
    this.end = pos + n;
    return this.buf.subarray(0, Math.min(n, len));
  }
}
