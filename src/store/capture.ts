// Capturing a write: journal it with its indicia (the write is history from then on), let it join the
// open window, then write production. While closed windows not yet applied hold too many bytes,
// writes wait at a gate, in order.
import type { Clock } from '../clock.js';
import type { Journal } from '../journal/journal.js';
import type { RecordRef } from '../journal/reader.js';
import type { Volume } from '../volumes/volume-set.js';
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

export class Capture {
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

  /** Captures the write now and returns its seq, or null when it must wait (see whenRoom). */
  tryNow(v: Volume, offset: number, data: Uint8Array): number | null {
    if (this.ctx.pipeline.pendingBytes > this.ctx.limits.pendingBytesMax || this.gated > 0) return null;
    return this.capture(v, offset, data);
  }

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
      return this.capture(v, offset, data);
    } finally {
      this.gated--;
      done();
    }
  }

  private capture(v: Volume, offset: number, data: Uint8Array): number {
    const { journal, windows, production } = this.ctx;
    production.redoFailed();
    const now = this.ctx.clock.now();
    windows.makeRoom(data.byteLength, now);
    let ref: RecordRef;
    try {
      ref = journal.append(v.index, offset, data, now);
    } catch (err) {
      // Nothing was consumed: the sequence number is reused by the next write.
      throw ioError(`journaling a write to volume "${v.name}" at ${offset} (${data.byteLength} bytes)`, err);
    }
    // Journaled: the write is history from here on, whatever happens to production.
    this.writesByVolume[v.index]++;
    this.bytesByVolume[v.index] += data.byteLength;
    windows.add(ref);
    production.write(v, offset, data, ref);
    return ref.seq;
  }
}
