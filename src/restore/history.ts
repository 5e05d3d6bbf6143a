// The read side of a store: resolve a target, open a point-in-time view, restore a volume to a file,
// report status and the transaction log. Shared by the writer (in-process, views stay live while
// windows are applied) and by readers in other processes (the CLI while `rewind serve` runs).
import type { StoreConfig } from '../config.js';
import type { JournalReader } from '../journal/reader.js';
import type { Storage } from '../storage/storage.js';
import type { TransactionIndex, TxEntry } from '../transactions/transactions.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import type { Catalog } from './catalog.js';
import { PackCache } from './pack-cache.js';
import { resolveTarget, type Target } from './target.js';
import { PointInTimeView } from './view.js';
import { isoTime } from '../units.js';
import { badArgument } from '../errors.js';

export interface HistoryState {
  lastSeq(): number;
  lastTime(): number;
  appliedSeq(): number;
  now(): number;
}

export interface StatusReport {
  lastSeq: number;
  lastTime: string | null;
  appliedSeq: number;
  transactions: number;
  volumes: { name: string; size: number }[];
  blockSize: number;
  window: string;
  createdAt: string;
}

export interface LogEntry {
  id: number;
  firstSeq: number;
  lastSeq: number;
  t1: string;
  t2: string;
  writes: number;
  bytesWritten: number;
  changedBlocks: number;
  forwardBytes: number;
  backwardBytes: number;
  packBytes: number;
}

export type Progress = (doneBytes: number, totalBytes: number) => void;

const RESTORE_CHUNK_BYTES = 8 * 2 ** 20;

export class History {
  readonly packs: PackCache;

  constructor(
    readonly storage: Storage,
    readonly config: StoreConfig,
    readonly volumes: VolumeSet,
    readonly index: TransactionIndex,
    readonly journal: JournalReader,
    readonly catalog: Catalog,
    private readonly state: HistoryState,
  ) {
    this.packs = new PackCache(storage);
  }

  /** The sequence number a target stands for. */
  resolve(target: Target): number {
    return resolveTarget({
      index: this.index,
      journal: this.journal,
      lastSeq: this.state.lastSeq(),
      createdAt: Date.parse(this.config.createdAt),
      now: this.state.now(),
    }, target);
  }

  /** A read-only view of `volume` after write `seq` (or at a target). */
  view(volume: string, at: number | Target): PointInTimeView {
    const v = this.volumes.byName(volume);
    const seq = typeof at === 'number' ? at : this.resolve(at);
    return new PointInTimeView({
      storage: this.storage,
      blockSize: this.config.blockSize,
      index: this.index,
      journal: this.journal,
      catalog: this.catalog,
      packs: this.packs,
      lastSeq: () => this.state.lastSeq(),
      appliedSeq: () => this.state.appliedSeq(),
    }, v, seq);
  }

  /** Writes the volume as of the target to `outPath` (a new file, or an existing file or device of at least the volume's size). */
  async restore(volume: string, target: Target, outPath: string, progress?: Progress): Promise<{ seq: number; bytes: number }> {
    const view = this.view(volume, target);
    const size = view.size;
    const out = this.storage.open(outPath, 'create');
    try {
      // A regular file is rewritten sparse (zero chunks stay holes); a device is written whole.
      let sparse = true;
      try {
        out.truncate(0);
        out.truncate(size);
      } catch {
        sparse = false;
        if (out.size() < size) throw badArgument(`${outPath} holds ${out.size()} bytes; volume "${volume}" needs ${size}`);
      }
      const buf = Buffer.allocUnsafe(Math.min(RESTORE_CHUNK_BYTES, size));
      const zero = Buffer.alloc(buf.byteLength);
      for (let at = 0; at < size; at += buf.byteLength) {
        const len = Math.min(buf.byteLength, size - at);
        const chunk = view.read(at, len, buf.subarray(0, len));
        if (!(sparse && chunk.equals(zero.subarray(0, len)))) out.write(chunk, at);
        progress?.(at + len, size);
        if ((at / buf.byteLength) % 16 === 15) await new Promise((r) => setImmediate(r));
      }
      await out.sync();
    } finally {
      out.close();
    }
    return { seq: view.seq, bytes: size };
  }

  status(): StatusReport {
    const lastTime = this.state.lastTime();
    return {
      lastSeq: this.state.lastSeq(),
      lastTime: this.state.lastSeq() > 0 ? isoTime(lastTime) : null,
      appliedSeq: this.state.appliedSeq(),
      transactions: this.index.entries.length,
      volumes: this.volumes.volumes.map((v) => ({ name: v.name, size: v.size })),
      blockSize: this.config.blockSize,
      window: this.config.window,
      createdAt: this.config.createdAt,
    };
  }

  log(): LogEntry[] {
    return this.index.entries.map(logEntry);
  }
}

export function logEntry(e: TxEntry): LogEntry {
  return {
    id: e.id, firstSeq: e.firstSeq, lastSeq: e.lastSeq, t1: isoTime(e.t1), t2: isoTime(e.t2), writes: e.writes,
    bytesWritten: e.bytesWritten, changedBlocks: e.changedBlocks, forwardBytes: e.fwdBytes, backwardBytes: e.bwdBytes, packBytes: e.packBytes,
  };
}
