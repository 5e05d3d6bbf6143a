// Capturing a write: journal it with its indicia (the write is history from then on), let it join the
// open window, then write production. While closed windows not yet applied hold too many bytes,
// writes wait at a gate, in order.
//
// Batches: the NBD server hands over the writes of one socket read one after another in one
// synchronous run. Staged (stage()), they are journaled together at the end of that run (a
// microtask) with one vectored write, all or nothing: if it fails, every write of the batch fails
// and no sequence number is consumed. Anything else that captures, reads or flushes commits the
// staged batch first, so the order of calls stays the order of sequence numbers.
import type { Clock } from '../clock.js';
import { JOURNAL_BATCH_WRITES_MAX, type Journal, type JournalWrite } from '../journal/journal.js';
import type { RecordRef } from '../journal/reader.js';
import type { Volume, VolumeSet } from '../volumes/volume-set.js';
import type { ApplyPipeline } from './apply.js';
import { ioError } from './io-errors.js';
import type { Production } from './production.js';
import type { WindowCloser } from './windows.js';

export interface CaptureContext {
  journal: Journal;
  clock: Clock;
  windows: WindowCloser;
  production: Production;
  pipeline: ApplyPipeline;
  /** Writes wait while the queued windows hold more than `pendingBytesMax` bytes (read live: a capacity changes it). */
  limits: { readonly pendingBytesMax: number };
  /** Throws if the store may not be written (closed, closing, failed). */
  checkWritable(): void;
  /** How many volumes the store has (writes are counted per volume index). */
  volumeCount: number;
}

/** Bytes staged before the batch is journaled at once, without waiting for the end of the run. */
export const STAGED_BYTES_MAX = 1024 * 1024;

interface StagedWrite extends JournalWrite {
  v: Volume;
  resolve(seq: number): void;
  reject(err: unknown): void;
}

/** What this writer captured into one volume since it opened. */
export interface VolumeWriteCount {
  volume: string;
  writes: number;
  bytes: number;
}

export class Capture {
  /** Writes staged for the next batch, in call order. */
  private staged: StagedWrite[] = [];
  private stagedBytes = 0;
  /** Settles when the last gated write is done: the next one waits for it. */
  private gate: Promise<void> = Promise.resolve();
  /** Writes waiting at the gate (a write that could go at once must not overtake them). */
  private gated = 0;
  /** Writes captured by this writer, and their bytes, per volume index (plain arrays: counted on every write). */
  readonly writesByVolume: number[];
  readonly bytesByVolume: number[];

  constructor(private readonly ctx: CaptureContext) {
    this.writesByVolume = new Array<number>(ctx.volumeCount).fill(0);
    this.bytesByVolume = new Array<number>(ctx.volumeCount).fill(0);
  }

  /** Writes and bytes captured per volume since the writer opened. */
  counts(volumes: VolumeSet): VolumeWriteCount[] {
    return volumes.volumes.map((v) => ({ volume: v.name, writes: this.writesByVolume[v.index], bytes: this.bytesByVolume[v.index] }));
  }

  /** Captures the write now and returns its seq, or null when it must wait (see whenRoom). */
  tryNow(v: Volume, offset: number, data: Uint8Array): number | null {
    if (this.ctx.pipeline.pendingBytes > this.ctx.limits.pendingBytesMax || this.gated > 0) return null;
    return this.capture(v, offset, data);
  }

  /**
   * Stages the write for the batch journaled at the end of this synchronous run (see the header);
   * resolves with its seq once it is journaled and handed to production. Null when it must wait
   * (see whenRoom). `data` must stay untouched until the promise settles.
   */
  stage(v: Volume, offset: number, data: Uint8Array): Promise<number> | null {
    if (this.ctx.pipeline.pendingBytes > this.ctx.limits.pendingBytesMax || this.gated > 0) return null;
    return new Promise<number>((resolve, reject) => {
      if (this.staged.length === 0) queueMicrotask(this.commitStaged);
      this.staged.push({ v, volume: v.index, offset, data, time: this.ctx.clock.now(), resolve, reject });
      this.stagedBytes += data.byteLength;
      if (this.stagedBytes >= STAGED_BYTES_MAX || this.staged.length >= JOURNAL_BATCH_WRITES_MAX) this.commitStaged();
    });
  }

  /** Journals the staged writes (one vectored write), then lets them join the window and production, in order. */
  readonly commitStaged = (): void => {
    const batch = this.staged;
    if (batch.length === 0) return;
    this.staged = [];
    this.stagedBytes = 0;
    const { journal, production } = this.ctx;
    let refs: RecordRef[];
    try {
      production.redoFailed();
      refs = journal.appendBatch(batch);
    } catch (err) {
      // Nothing was consumed: the sequence numbers are reused by the next writes.
      const first = batch[0];
      const e = ioError(`journaling ${batch.length} writes from volume "${first.v.name}" at ${first.offset}`, err);
      for (const w of batch) w.reject(e);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i];
      const ref = refs[i];
      try {
        this.joined(w.v, w.offset, w.data, ref);
        w.resolve(ref.seq);
      } catch (err) {
        w.reject(err);
      }
    }
  };

  /** Writes wait, in order, while closed windows not yet applied hold too many bytes. */
  async whenRoom(v: Volume, offset: number, data: Buffer): Promise<number> {
    const { pipeline, limits } = this.ctx;
    this.gated++;
    const prev = this.gate;
    let done!: () => void;
    this.gate = new Promise((r) => (done = r));
    try {
      await prev;
      while (pipeline.pendingBytes > limits.pendingBytesMax) {
        this.ctx.checkWritable();
        if (pipeline.retryError) throw pipeline.retryError;
        await pipeline.waitForRoom();
      }
      this.ctx.checkWritable();
      this.commitStaged();
      return this.capture(v, offset, data);
    } finally {
      this.gated--;
      done();
    }
  }

  private capture(v: Volume, offset: number, data: Uint8Array): number {
    this.commitStaged();
    const { journal, production } = this.ctx;
    production.redoFailed();
    const now = this.ctx.clock.now();
    let ref: RecordRef;
    try {
      ref = journal.append(v.index, offset, data, now);
    } catch (err) {
      // Nothing was consumed: the sequence number is reused by the next write.
      throw ioError(`journaling a write to volume "${v.name}" at ${offset} (${data.byteLength} bytes)`, err);
    }
    this.joined(v, offset, data, ref);
    return ref.seq;
  }

  /** A journaled write (the write is history from here on, whatever happens to production) joins its window and production. */
  private joined(v: Volume, offset: number, data: Uint8Array, ref: RecordRef): void {
    const { windows, production } = this.ctx;
    this.writesByVolume[v.index]++;
    this.bytesByVolume[v.index] += data.byteLength;
    // The window may have to close before this write joins it (limits, time): records are added in seq order either way.
    windows.makeRoom(ref.length, ref.time);
    windows.add(ref);
    production.write(v, offset, data, ref);
  }
}
