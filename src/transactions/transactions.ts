// The transaction index: one fixed-size entry per applied window, appended in window order. An
// entry links a window's sequence and time range to its increment pack and to its first journal
// record; appending it is the last step of applying a window, so its presence means "applied".
//
// Ids are consecutive from the first entry the file keeps, not from 1: once the lifecycle has dropped
// the oldest packs, compact() rewrites the file without the entries of windows older than the oldest
// point held (each kept entry keeps its id). It follows the store's retirement order: the kept entries
// go to a temporary file, which is synced, renamed over the index, and the directory synced. A crash
// at any step leaves the old index or the new one, both whole (a temporary file left over is removed
// on open), and both agree on every window they hold. Appends and compaction take turns, so an entry
// is never appended to the file being replaced. A reader in another process notices the rename at its
// next refresh (the file's first id changed) and reads the new file whole.
//
// entry (128 bytes, little-endian)
//   0 u32 magic 'RWTX'  4 u16 version (1)  6 u16 entry bytes (128)
//   8 u64 transaction id  16 u64 first seq  24 u64 last seq  32 f64 t1  40 f64 t2 (ms since the epoch)
//  48 u32 writes  52 u32 pack sections  56 u64 bytes written  64 u64 changed blocks
//  72 u64 pack bytes  80 u64 forward bytes  88 u64 backward bytes
//  96 u64 journal segment of the first record  104 u64 position of the first record
// 112 u32 CRC32C of the pack header  116..124 zero  124 u32 CRC32C of bytes 0..124
import { getU64, tag } from '../encoding/fields.js';
import { assert, corrupt } from '../errors.js';
import { FixedRecord } from '../encoding/fixed-record.js';
import { joinPath, type Storage, type StorageFile } from '../storage/storage.js';
import { lowerBound } from '../sorted.js';

export const TX_MAGIC = tag('RWTX');
export const TX_VERSION = 1;
export const TX_ENTRY_BYTES = 128;
export const TX_FILE = 'transactions.idx';
/** Where compaction writes the kept entries before the rename. */
export const TX_TMP_FILE = `${TX_FILE}.tmp`;
/** Entries encoded per write while compacting (1 MiB). */
const COMPACT_CHUNK_ENTRIES = 8192;

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
  private list: TxEntry[] = [];
  private file: StorageFile | null = null;
  /** Appends and compactions, one after the other (each waits for the one before). */
  private turn: Promise<unknown> = Promise.resolve();
  /** A compaction renamed the file but syncing the directory failed: the next append syncs it first. */
  private dirUnsynced = false;
  /** Where a torn or damaged entry was found, if any. */
  damage: { position: number; reason: string } | null = null;
  /** A reader's view of a bad last entry: a writer may be appending it right now. */
  pendingTail: { position: number; reason: string } | null = null;

  private constructor(private readonly storage: Storage, private readonly dir: string, readonly path: string, private readonly writable: boolean) {}

  /**
   * Reads the index. A writer cuts off a torn last entry (a crash during its append) and removes what
   * an interrupted compaction left; a reader stops before a torn last entry. A bad entry followed by
   * good ones is damage and is reported, never skipped.
   */
  static async open(storage: Storage, dir: string, writable: boolean): Promise<TransactionIndex> {
    const path = joinPath(dir, TX_FILE);
    if (writable) storage.mkdirp(dir);
    const idx = new TransactionIndex(storage, dir, path, writable);
    if (writable) {
      // A compaction cut short before its rename: the index itself is still the old one, whole.
      const tmp = joinPath(dir, TX_TMP_FILE);
      if (storage.exists(tmp)) storage.remove(tmp);
      const created = !storage.exists(path);
      idx.file = storage.open(path, 'create');
      if (created) await storage.syncDir(dir);
    }
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

  /** Every entry the file holds, oldest first: ids consecutive from `firstId`. */
  get entries(): readonly TxEntry[] {
    return this.list;
  }

  /**
   * Reads entries appended since the last look (another process may be the writer). A reader opens
   * the file afresh each time: when the writer compacted it, the name stands for a new file, which
   * starts at a later id, and is read whole.
   */
  refresh(): void {
    if (!this.writable && !this.followFile()) return;
    const file = this.file!;
    const size = file.size();
    let pos = this.list.length * TX_ENTRY_BYTES;
    this.pendingTail = null;
    if (size <= pos) return;
    const buf = Buffer.allocUnsafe(size - pos);
    const n = file.read(buf, pos);
    for (let at = 0; at + TX_ENTRY_BYTES <= n; at += TX_ENTRY_BYTES, pos += TX_ENTRY_BYTES) {
      const e = decodeTxEntry(buf.subarray(at, at + TX_ENTRY_BYTES));
      const prev = this.last;
      const reason = typeof e === 'string' ? e
        : !prev && e.id < 1 ? `transaction id ${e.id} where ids start at 1`
        : prev && e.id !== prev.id + 1 ? `transaction id ${e.id} where ${prev.id + 1} was expected`
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
      this.list.push(e as TxEntry);
    }
  }

  /**
   * A reader's handle on the file the name stands for now; false when there is none yet. When the
   * file now named starts at another id than the entries read so far, the writer replaced it
   * (compaction, or a crash that undid one): those entries are forgotten and it is read from the start.
   */
  private followFile(): boolean {
    if (!this.storage.exists(this.path)) return false;
    const now = this.storage.open(this.path, 'read');
    const first = this.list[0];
    if (first) {
      const head = Buffer.alloc(16);
      const same = now.read(head, 0) === head.length && getU64(head, 8) === first.id;
      if (!same) {
        this.list = [];
        this.damage = null;
      }
    }
    this.file?.close();
    this.file = now;
    return true;
  }

  get last(): TxEntry | undefined {
    return this.list[this.list.length - 1];
  }

  /** The id of the oldest entry the file keeps (1 while nothing has been compacted away). */
  get firstId(): number {
    return this.list[0]?.id ?? 1;
  }

  /** The id the next window applied gets. */
  get nextId(): number {
    return (this.last?.id ?? 0) + 1;
  }

  /** The entry of transaction `id`, or undefined when the index does not hold it (compacted away, or not applied yet). */
  byId(id: number): TxEntry | undefined {
    return Number.isSafeInteger(id) ? this.list[id - this.firstId] : undefined;
  }

  /** Sequence number of the last write included in the replica. */
  get appliedSeq(): number {
    return this.last?.lastSeq ?? 0;
  }

  /** Appends an entry durably (after a compaction in progress). */
  append(e: TxEntry): Promise<void> {
    return this.inTurn(async () => {
      assert(this.writable && this.file, 'index opened for writing');
      assert(e.id === this.nextId, `transaction ids are consecutive (${e.id} after ${this.nextId - 1})`);
      assert(e.firstSeq === this.appliedSeq + 1, `transaction ${e.id} starts right after the last applied seq`);
      this.file.write(encodeTxEntry(e), this.list.length * TX_ENTRY_BYTES);
      await this.file.sync();
      // The entry is in the file the name stands for only once that rename is durable.
      if (this.dirUnsynced) {
        await this.storage.syncDir(this.dir);
        this.dirUnsynced = false;
      }
      this.list.push(e);
    });
  }

  /**
   * Rewrites the index without the entries of windows that end before `oldestPoint` (the oldest point
   * history holds: the end of a window, whose entry stays, with its time), when at least `minEntries`
   * of them and a quarter of the file would go: rewriting is worth it then, and its cost stays a
   * constant per window. The newest entry always stays (it carries the next id and where recovery
   * starts). Runs after an append in flight; appends wait for it. Returns the entries removed.
   */
  compact(oldestPoint: number, minEntries: number): Promise<number> {
    return this.inTurn(async () => {
      assert(this.writable && this.file, 'index opened for writing');
      const drop = Math.min(lowerBound(this.list, (e) => e.lastSeq >= oldestPoint), this.list.length - 1);
      if (drop <= 0 || drop < minEntries || drop * 4 < this.list.length) return 0;
      const kept = this.list.slice(drop);
      const tmpPath = joinPath(this.dir, TX_TMP_FILE);
      const tmp = this.storage.open(tmpPath, 'create');
      try {
        tmp.truncate(0);
        for (let i = 0; i < kept.length; i += COMPACT_CHUNK_ENTRIES) {
          tmp.write(Buffer.concat(kept.slice(i, i + COMPACT_CHUNK_ENTRIES).map(encodeTxEntry)), i * TX_ENTRY_BYTES);
        }
        await tmp.sync();
        this.storage.rename(tmpPath, this.path);
      } catch (err) {
        tmp.close();
        if (this.storage.exists(tmpPath)) this.storage.remove(tmpPath);
        throw err;
      }
      // The name stands for the new file now: appends go to it.
      this.file.close();
      this.file = tmp;
      this.list = kept;
      this.dirUnsynced = true;
      await this.storage.syncDir(this.dir);
      this.dirUnsynced = false;
      return drop;
    });
  }

  /** Runs `fn` after every append and compaction queued before it. */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** The entry whose window holds `seq`, or undefined. */
  findBySeq(seq: number): TxEntry | undefined {
    const i = lowerBound(this.list, (e) => e.lastSeq >= seq);
    const e = this.list[i];
    return e && e.firstSeq <= seq ? e : undefined;
  }

  /** Index of the first entry whose t2 is later than `time` (entries.length if none). */
  firstEndingAfter(time: number): number {
    return lowerBound(this.list, (e) => e.t2 > time);
  }

  close(): void {
    this.file?.close();
    this.file = null;
  }
}

/** Where entry `e` lies in the index file whose entries are `entries` (as read, oldest first). */
export function entryPosition(entries: readonly TxEntry[], e: TxEntry): number {
  return (e.id - entries[0].id) * TX_ENTRY_BYTES;
}
