// The transaction index: one fixed-size entry per applied window, appended in window order. An
// entry links a window's sequence and time range to its increment pack and to its first journal
// record; appending it is the last step of applying a window, so its presence means "applied".
//
// entry (128 bytes, little-endian)
//   0 u32 magic 'RWTX'  4 u16 version (1)  6 u16 entry bytes (128)
//   8 u64 transaction id  16 u64 first seq  24 u64 last seq  32 f64 t1  40 f64 t2 (ms since the epoch)
//  48 u32 writes  52 u32 pack sections  56 u64 bytes written  64 u64 changed blocks
//  72 u64 pack bytes  80 u64 forward bytes  88 u64 backward bytes
//  96 u64 journal segment of the first record  104 u64 position of the first record
// 112 u32 CRC32C of the pack header  116..124 zero  124 u32 CRC32C of bytes 0..124
import { tag } from '../encoding/fields.js';
import { assert, corrupt } from '../errors.js';
import { FixedRecord } from '../encoding/fixed-record.js';
import { joinPath, type Storage, type StorageFile } from '../storage/storage.js';
import { lowerBound } from '../sorted.js';

export const TX_MAGIC = tag('RWTX');
export const TX_VERSION = 1;
export const TX_ENTRY_BYTES = 128;
export const TX_FILE = 'transactions.idx';

export interface TxEntry {
  id: number;
  firstSeq: number;
  lastSeq: number;
  t1: number;
  t2: number;
  writes: number;
  sections: number;
  bytesWritten: number;
  changedBlocks: number;
  packBytes: number;
  fwdBytes: number;
  bwdBytes: number;
  journal: { segment: number; position: number };
  packCrc: number;
}

/** A TxEntry as its fields lie in the entry (the journal position flattened). */
type TxFields = Omit<TxEntry, 'journal'> & { journalSegment: number; journalPosition: number };

const TX_ENTRY = new FixedRecord<TxFields>({
  magic: TX_MAGIC, version: TX_VERSION, bytes: TX_ENTRY_BYTES, record: 'entry', format: 'entry',
  fields: {
    id: [8, 'u64'], firstSeq: [16, 'u64'], lastSeq: [24, 'u64'], t1: [32, 'f64'], t2: [40, 'f64'],
    writes: [48, 'u32'], sections: [52, 'u32'], bytesWritten: [56, 'u64'], changedBlocks: [64, 'u64'],
    packBytes: [72, 'u64'], fwdBytes: [80, 'u64'], bwdBytes: [88, 'u64'],
    journalSegment: [96, 'u64'], journalPosition: [104, 'u64'], packCrc: [112, 'u32'],
  },
});

export function encodeTxEntry(e: TxEntry): Buffer {
  const { journal, ...rest } = e;
  return TX_ENTRY.encode({ ...rest, journalSegment: journal.segment, journalPosition: journal.position });
}

export function decodeTxEntry(b: Buffer): TxEntry | string {
  const f = TX_ENTRY.decode(b);
  if (typeof f === 'string') return f;
  const { journalSegment, journalPosition, ...rest } = f;
  return { ...rest, journal: { segment: journalSegment, position: journalPosition } };
}

export class TransactionIndex {
  readonly entries: TxEntry[] = [];
  private file: StorageFile | null = null;
  /** Where a torn or damaged entry was found, if any. */
  damage: { position: number; reason: string } | null = null;
  /** A reader's view of a bad last entry: a writer may be appending it right now. */
  pendingTail: { position: number; reason: string } | null = null;

  private constructor(private readonly storage: Storage, readonly path: string, private readonly writable: boolean) {}

  /**
   * Reads the index. A writer cuts off a torn last entry (a crash during its append); a reader stops
   * before it. A bad entry followed by good ones is damage and is reported, never skipped.
   */
  static async open(storage: Storage, dir: string, writable: boolean): Promise<TransactionIndex> {
    const path = joinPath(dir, TX_FILE);
    if (writable) storage.mkdirp(dir);
    const idx = new TransactionIndex(storage, path, writable);
    if (writable) {
      const created = !storage.exists(path);
      idx.file = storage.open(path, 'create');
      if (created) await storage.syncDir(dir);
    }
    else if (storage.exists(path)) idx.file = storage.open(path, 'read');
    idx.refresh();
    if (writable && idx.damage) {
      const size = idx.file!.size();
      const at = idx.damage.position;
      if (size - at >= TX_ENTRY_BYTES * 2) throw corrupt(path, at, `${idx.damage.reason}; run \`rewind verify\``);
      idx.file!.truncate(at);
      await idx.file!.sync();
      idx.damage = null;
    }
    return idx;
  }

  /** Reads entries appended since the last look (another process may be the writer). */
  refresh(): void {
    if (!this.file) {
      if (!this.storage.exists(this.path)) return;
      this.file = this.storage.open(this.path, 'read');
    }
    const size = this.file.size();
    let pos = this.entries.length * TX_ENTRY_BYTES;
    this.pendingTail = null;
    if (size <= pos) return;
    const buf = Buffer.allocUnsafe(size - pos);
    const n = this.file.read(buf, pos);
    for (let at = 0; at + TX_ENTRY_BYTES <= n; at += TX_ENTRY_BYTES, pos += TX_ENTRY_BYTES) {
      const e = decodeTxEntry(buf.subarray(at, at + TX_ENTRY_BYTES));
      const prev = this.entries[this.entries.length - 1];
      const reason = typeof e === 'string' ? e
        : e.id !== this.entries.length + 1 ? `transaction id ${e.id} where ${this.entries.length + 1} was expected`
        : prev && e.firstSeq !== prev.lastSeq + 1 ? `transaction ${e.id} starts at seq ${e.firstSeq}, not right after ${prev.lastSeq}`
        : e.lastSeq < e.firstSeq ? `transaction ${e.id} has last seq ${e.lastSeq} before first seq ${e.firstSeq}` : null;
      if (reason !== null) {
        // The last entry may be mid-append by a writer in another process.
        if (!this.writable && n - at < TX_ENTRY_BYTES * 2) {
          this.pendingTail = { position: pos, reason };
          return;
        }
        this.damage = { position: pos, reason };
        return;
      }
      this.entries.push(e as TxEntry);
    }
  }

  get last(): TxEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  /** Sequence number of the last write included in the replica. */
  get appliedSeq(): number {
    return this.last?.lastSeq ?? 0;
  }

  /** Appends an entry durably. */
  async append(e: TxEntry): Promise<void> {
    assert(this.writable && this.file, 'index opened for writing');
    assert(e.id === this.entries.length + 1, `transaction ids are consecutive (${e.id})`);
    assert(e.firstSeq === this.appliedSeq + 1, `transaction ${e.id} starts right after the last applied seq`);
    this.file.write(encodeTxEntry(e), this.entries.length * TX_ENTRY_BYTES);
    await this.file.sync();
    this.entries.push(e);
  }

  /** The entry whose window holds `seq`, or undefined. */
  findBySeq(seq: number): TxEntry | undefined {
    const i = lowerBound(this.entries, (e) => e.lastSeq >= seq);
    const e = this.entries[i];
    return e && e.firstSeq <= seq ? e : undefined;
  }

  /** Index of the first entry whose t2 is later than `time` (entries.length if none). */
  firstEndingAfter(time: number): number {
    return lowerBound(this.entries, (e) => e.t2 > time);
  }

  close(): void {
    this.file?.close();
    this.file = null;
  }
}
