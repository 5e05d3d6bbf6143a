// The journal writer: appends one record per write, in sequence order, to the open segment; seals
// segments at the size limit; makes everything appended durable with group commit (one fsync
// answers every flush that was waiting). On open it finds the end of the journal and cuts off a
// record torn by a crash.
import { crc32c } from '../encoding/fields.js';
import { assert, corrupt, RewindError } from '../errors.js';
import { joinPath, type Storage, type StorageFile } from '../storage/storage.js';
import { JournalReader, type RecordRef } from './reader.js';
import { encodeRecordHeader, encodeSegmentHeader, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from './record.js';
import { listSegments, openSegmentName, sealedSegmentName } from './segments.js';

export interface JournalOptions {
  segmentBytesMax: number;
  /** Told about a torn tail that recovery cut off. */
  onWarning?: (message: string) => void;
  /**
   * Called before recovery cuts records off the tail with the bytes cut (from a record boundary), or
   * null for a whole segment set aside: production may hold their writes, so the store notes where.
   */
  onCut?: (bytes: Buffer | null) => Promise<void>;
}

/** One write to journal: its volume index, volume offset, bytes and capture time (ms since the epoch). */
export interface JournalWrite {
  volume: number;
  offset: number;
  data: Uint8Array;
  time: number;
}

/** Most writes in one journal batch: bounds the header buffer and the iovec list of one writev. */
export const JOURNAL_BATCH_WRITES_MAX = 1024;

interface Waiter {
  seq: number;
  resolve(): void;
  reject(err: unknown): void;
}

export class Journal {
  readonly reader: JournalReader;
  private file!: StorageFile;
  private segmentFirstSeq = 1;
  private position = SEGMENT_HEADER_BYTES;
  private _lastSeq = 0;
  private _lastTime = 0;
  private durableSeq = 0;
  /** Record headers of the batch being appended (grown to the largest batch). */
  private headers = Buffer.alloc(16 * RECORD_HEADER_BYTES);
  /** Files written since their last sync. */
  private readonly unsynced = new Set<StorageFile>();
  /** Segments done with, waiting for their records to be durable before they are renamed and closed. */
  private sealing: { firstSeq: number; lastSeq: number; file: StorageFile }[] = [];
  private dirDirty = false;
  private waiters: Waiter[] = [];
  private syncing = false;
  private failure: Error | null = null;

  private constructor(private readonly storage: Storage, readonly dir: string, private readonly opts: JournalOptions) {
    this.reader = new JournalReader(storage, dir);
  }

  get lastSeq(): number { return this._lastSeq; }
  get lastTime(): number { return this._lastTime; }
  /** Highest sequence number known durable. */
  get syncedSeq(): number { return this.durableSeq; }

  /**
   * Opens (creating when empty) the journal in `dir`. `scanFrom` is a record position known good
   * (from the transaction index), so recovery reads only the tail.
   */
  static async open(storage: Storage, dir: string, opts: JournalOptions, scanFrom?: { segment: number; position: number }, onRecord?: (ref: RecordRef) => void): Promise<Journal> {
    storage.mkdirp(dir);
    const j = new Journal(storage, dir, opts);
    await j.recover(scanFrom, onRecord);
    return j;
  }

  private async recover(scanFrom: { segment: number; position: number } | undefined, onRecord?: (ref: RecordRef) => void): Promise<void> {
    let segs = listSegments(this.storage, this.dir);
    if (segs.length === 0) {
      this.createSegment(1, 0);
      await this.storage.syncDir(this.dir);
      return;
    }
    // Every "-open" segment but the newest was being sealed. A seal (the rename to the sequence
    // range) is made only once the segment's records are durable, so an unfinished one may end
    // early: then the journal ends there (point-in-time recovery) and the later segments are set
    // aside under ".cut" names; otherwise the seal is finished.
    let changed = false;
    for (let i = 0; i + 1 < segs.length; i++) {
      if (segs[i].lastSeq !== null) continue;
      const end = this.segmentEnd(segs[i].firstSeq);
      changed = true;
      if (end.complete && end.lastSeq === segs[i + 1].firstSeq - 1) {
        this.storage.rename(segs[i].path, joinPath(this.dir, sealedSegmentName(segs[i].firstSeq, end.lastSeq)));
        continue;
      }
      await this.opts.onCut?.(null);
      for (const later of segs.slice(i + 1)) {
        this.storage.rename(later.path, `${later.path}.cut`);
        this.opts.onWarning?.(`journal: ${segs[i].name} ends before seq ${segs[i + 1].firstSeq} (it was being sealed when the writer stopped); set ${later.name} aside as ${later.name}.cut`);
      }
      break;
    }
    if (changed) {
      await this.storage.syncDir(this.dir);
      segs = listSegments(this.storage, this.dir);
    }
    const newest = segs[segs.length - 1];
    let lastRef: RecordRef | null = null;
    // Without a known position (nothing applied yet) every segment is read: all of it is unapplied.
    const start = scanFrom && segs.some((s) => s.firstSeq === scanFrom.segment) ? scanFrom : { segment: segs[0].firstSeq, position: SEGMENT_HEADER_BYTES };
    const stop = this.reader.scan({
      start,
      verifyPayload: true,
      onRecord: (ref) => {
        lastRef = ref;
        onRecord?.(ref);
      },
    });
    this.reader.closeFiles();
    // Point-in-time recovery, as databases do with their logs: a crash can lose any page written
    // after the last fsync, so in the newest segment the journal ends at the first bad record, even
    // when good-looking records follow (they were never acknowledged by a flush). The bytes cut off
    // are kept beside the segment for inspection. A bad record in an older, sealed segment is damage.
    if (stop.kind === 'damaged' && (stop.segment.firstSeq !== newest.firstSeq || newest.lastSeq !== null)) {
      throw corrupt(stop.segment.path, stop.position, `${stop.reason}; run \`rewind verify\``);
    }
    segs = listSegments(this.storage, this.dir);
    const tail = segs[segs.length - 1];
    const tailEnd = stop.position;
    const last: RecordRef | null = lastRef;
    if (tail.lastSeq !== null) {
      // The newest segment is sealed: start a fresh open one after it.
      this._lastSeq = tail.lastSeq;
      this._lastTime = last ? (last as RecordRef).time : 0;
      this.durableSeq = this._lastSeq;
      this.createSegment(tail.lastSeq + 1, this._lastTime);
      await this.storage.syncDir(this.dir);
      return;
    }
    this.file = this.storage.open(tail.path, 'write');
    this.segmentFirstSeq = tail.firstSeq;
    if (stop.kind === 'torn' || stop.kind === 'damaged') {
      const size = this.file.size();
      const cut = Buffer.allocUnsafe(size - stop.position);
      this.file.read(cut, stop.position);
      // Records start after the segment header (a bad header is cut with them).
      await this.opts.onCut?.(cut.subarray(Math.min(cut.byteLength, Math.max(0, SEGMENT_HEADER_BYTES - stop.position))));
      if (stop.kind === 'damaged') {
        const keep = this.storage.open(`${tail.path}.cut-${stop.position}`, 'create');
        keep.truncate(0);
        keep.write(cut, 0);
        await keep.sync();
        keep.close();
      }
      if (stop.position < SEGMENT_HEADER_BYTES) {
        this.file.truncate(0);
        this.file.write(encodeSegmentHeader(tail.firstSeq, 0), 0);
      } else {
        this.file.truncate(stop.position);
      }
      await this.file.sync();
      this.opts.onWarning?.(stop.kind === 'torn'
        ? `journal: cut off an incomplete record at ${tail.name} byte ${stop.position} (${size - stop.position} bytes: ${stop.reason})`
        : `journal: the newest segment ${tail.name} has a bad record at byte ${stop.position} (${stop.reason}) with more records after it; recovered to the point before it, and kept the ${size - stop.position} bytes cut off in ${tail.name}.cut-${stop.position}`);
    }
    this.position = Math.max(tailEnd, SEGMENT_HEADER_BYTES);
    if (last) {
      this._lastSeq = (last as RecordRef).seq;
      this._lastTime = (last as RecordRef).time;
    } else {
      this._lastSeq = tail.firstSeq - 1;
    }
    this.durableSeq = this._lastSeq;
  }

  /** The last good record of one segment, and whether the segment ends cleanly (no bad record in it). */
  private segmentEnd(segment: number): { lastSeq: number; complete: boolean } {
    let lastSeq = segment - 1;
    let crossed = false;
    const stop = this.reader.scan({
      start: { segment, position: SEGMENT_HEADER_BYTES },
      verifyPayload: true,
      onRecord: (r) => {
        if (r.segment !== segment) {
          crossed = true;
          return false;
        }
        lastSeq = r.seq;
      },
    });
    this.reader.closeFiles();
    const badHere = stop.kind !== 'end' && stop.segment.firstSeq === segment;
    return { lastSeq, complete: crossed || !badHere };
  }

  private createSegment(firstSeq: number, time: number): void {
    const path = joinPath(this.dir, openSegmentName(firstSeq));
    const file = this.storage.open(path, 'create');
    try {
      file.truncate(0);
      file.write(encodeSegmentHeader(firstSeq, time), 0);
    } catch (err) {
      file.close();
      this.storage.remove(path);
      throw err;
    }
    this.file = file;
    this.segmentFirstSeq = firstSeq;
    this.position = SEGMENT_HEADER_BYTES;
    this.unsynced.add(this.file);
    this.dirDirty = true;
  }

  /**
   * Starts the next segment. The old one is renamed to its sequence range once its records are
   * durable (in pump), so a sealed name always means a complete segment. If the next segment cannot
   * be made (out of space), nothing changed: this append fails and a later one tries again.
   */
  private rotate(time: number): void {
    assert(this._lastSeq >= this.segmentFirstSeq, 'a segment is sealed only when it holds a record');
    const old = { firstSeq: this.segmentFirstSeq, lastSeq: this._lastSeq, file: this.file };
    this.createSegment(this._lastSeq + 1, time);
    this.sealing.push(old);
    this.unsynced.add(old.file);
  }

  /**
   * Appends one record. The bytes are in the file (page cache) when this returns; `flush()` makes
   * them durable. On a failed write nothing is consumed: the sequence number is reused.
   */
  append(volume: number, offset: number, data: Uint8Array, time: number): RecordRef {
    return this.appendBatch([{ volume, offset, data, time }])[0];
  }

  /**
   * Appends one record per write, in order, with one vectored write (a socket read's writes, say).
   * All or nothing: when the write fails, every write of the batch fails and no sequence number is
   * consumed (the next records go where these would have). A batch starts a new segment when it
   * does not fit the open one, so it never spans two.
   */
  appendBatch(writes: readonly JournalWrite[]): RecordRef[] {
    if (this.failure) throw this.failure;
    const n = writes.length;
    assert(n >= 1 && n <= JOURNAL_BATCH_WRITES_MAX, `a journal batch holds 1..${JOURNAL_BATCH_WRITES_MAX} writes (${n})`);
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += RECORD_HEADER_BYTES + writes[i].data.byteLength;
    if (this.position + bytes > this.opts.segmentBytesMax && this._lastSeq >= this.segmentFirstSeq) {
      this.rotate(writes[0].time);
    }
    if (this.headers.byteLength < n * RECORD_HEADER_BYTES) this.headers = Buffer.alloc(Math.max(n, 16) * RECORD_HEADER_BYTES);
    const refs: RecordRef[] = new Array(n);
    const bufs: Uint8Array[] = new Array(2 * n);
    let seq = this._lastSeq;
    let t = this._lastTime;
    let position = this.position;
    for (let i = 0; i < n; i++) {
      const w = writes[i];
      seq++;
      t = Math.max(w.time, t);
      const ref: RecordRef = {
        seq, time: t, volume: w.volume, offset: w.offset, length: w.data.byteLength,
        payloadCrc: crc32c(w.data),
        segment: this.segmentFirstSeq, position,
      };
      const header = this.headers.subarray(i * RECORD_HEADER_BYTES, (i + 1) * RECORD_HEADER_BYTES);
      encodeRecordHeader(header, ref);
      bufs[2 * i] = header;
      bufs[2 * i + 1] = w.data;
      refs[i] = ref;
      position += RECORD_HEADER_BYTES + w.data.byteLength;
    }
    // Only once the bytes are in the file do the sequence numbers count as used.
    try {
      this.file.writev(bufs, this.position);
    } catch (err) {
      // Records of the batch that did reach the file go too (best effort: the next batch overwrites them anyway).
      try {
        this.file.truncate(this.position);
      } catch {
        // the failure reported is the write's
      }
      throw err;
    }
    this.unsynced.add(this.file);
    this.position = position;
    this._lastSeq = seq;
    this._lastTime = t;
    return refs;
  }

  /** Resolves once every record appended before the call is durable. */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this._lastSeq;
    if (seq <= this.durableSeq && !this.dirDirty) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      while (this.waiters.length > 0) {
        const upTo = this._lastSeq;
        const files = [...this.unsynced];
        this.unsynced.clear();
        await Promise.all(files.map((f) => f.sync()));
        // Seal, in order, the segments whose records this round made durable.
        while (this.sealing.length > 0) {
          const s = this.sealing[0];
          if (this.unsynced.has(s.file) || !files.includes(s.file)) break;
          this.storage.rename(joinPath(this.dir, openSegmentName(s.firstSeq)), joinPath(this.dir, sealedSegmentName(s.firstSeq, s.lastSeq)));
          s.file.close();
          this.sealing.shift();
          this.dirDirty = true;
        }
        if (this.dirDirty) {
          this.dirDirty = false;
          await this.storage.syncDir(this.dir);
        }
        this.durableSeq = Math.max(this.durableSeq, upTo);
        const still: Waiter[] = [];
        for (const w of this.waiters) (w.seq <= this.durableSeq ? w.resolve() : still.push(w));
        this.waiters = still;
      }
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing unsynced can be trusted.
      this.failure = new RewindError('IO', `journal sync failed: ${(err as Error).message}`, 'EIO', { cause: err });
      for (const w of this.waiters) w.reject(this.failure);
      this.waiters = [];
    } finally {
      this.syncing = false;
    }
  }

  /** Where the next record will go. */
  tail(): { segment: number; position: number } {
    return { segment: this.segmentFirstSeq, position: this.position };
  }

  /** Closes every file without syncing (a simulated crash). */
  abandon(): void {
    this.failure ??= new RewindError('CLOSED', 'journal abandoned');
    try {
      this.file.close();
    } catch {
      // already closed
    }
    for (const s of this.sealing) s.file.close();
    this.sealing = [];
    this.unsynced.clear();
    this.reader.closeFiles();
  }

  async close(): Promise<void> {
    await this.flush();
    this.file.close();
    for (const s of this.sealing) s.file.close();
    this.sealing = [];
    this.unsynced.clear();
    this.reader.closeFiles();
  }

  /** The error that stopped the journal for good (a failed fsync), if any. */
  get failed(): Error | null {
    return this.failure;
  }
}
