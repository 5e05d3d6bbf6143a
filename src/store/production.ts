// Writing the production volumes, the copy the application reads: every journaled write goes to its
// volume, queued for the production thread when the volume is a plain file, else written on the event
// loop. A write that fails after its record was journaled is written again from the journal before
// anything else reads or writes production.
import type { JournalReader, RecordRef } from '../journal/reader.js';
import type { ProductionWriter } from '../volumes/production-writer.js';
import type { Volume, VolumeSet } from '../volumes/volume-set.js';
import { ioError } from './io-errors.js';

export class Production {
  /** Journaled writes production does not hold yet (their write failed), in seq order. */
  private readonly redo: RecordRef[] = [];

  constructor(
    private readonly volumes: VolumeSet,
    private readonly journal: JournalReader,
    /** Production writes queued for their thread (null: written on the event loop). */
    private readonly writer: ProductionWriter<RecordRef> | null,
    private readonly onWarning?: (message: string) => void,
  ) {}

  /** Writes the journaled write `ref` (`data` at `offset` of `v`). `data` may be reused once this returns. */
  write(v: Volume, offset: number, data: Uint8Array, ref: RecordRef): void {
    // Queued for its thread when it is a plain file, else written here once the queue is empty.
    const fd = v.production!.osFd;
    if (this.writer !== null && fd !== undefined && this.writer.enqueue(fd, offset, data, ref)) return;
    try {
      this.barrier();
      v.production!.write(data, offset);
    } catch (err) {
      this.redo.push(ref);
      throw ioError(`writing seq ${ref.seq} to production volume "${v.name}" at ${offset}`, err);
    }
  }

  /** Reads `v` with every write so far in it. Bytes past the end of a shorter file are zeros. */
  read(v: Volume, offset: number, length: number): Buffer {
    this.barrier();
    const buf = Buffer.allocUnsafe(length);
    const n = v.production!.read(buf, offset, 0, length);
    if (n < length) buf.fill(0, n);
    return buf;
  }

  /**
   * Production holds every captured write once this returns (given `upTo` from `queued`, every write
   * captured until then): the queue is worked through and failed writes are redone.
   */
  barrier(upTo?: number): void {
    this.writer?.drain(upTo);
    this.redoFailed();
  }

  /**
   * Starts the production thread on the writes queued so far (woken now, not at its next look) and
   * returns the mark for `barrier` that waits for just those.
   */
  startQueued(): number | undefined {
    this.writer?.wake();
    return this.writer?.queued;
  }

  /** Production writes that failed after their record was journaled are written again (from the journal) before anything else. */
  redoFailed(): void {
    const failed = this.writer?.takeFailed();
    if (failed) {
      // Queued writes the thread could not do: written again from the journal, in order, below.
      this.redo.push(...failed.tags);
      this.onWarning?.(`production write of seq ${failed.tags[0].seq} failed (${failed.error.code}); writing it again from the journal`);
    }
    if (this.redo.length > 0) this.writer?.drain();
    while (this.redo.length > 0) {
      const r = this.redo[0];
      const v = this.volumes.byIndex(r.volume);
      try {
        v.production!.write(this.journal.payload(r), r.offset);
      } catch (err) {
        throw ioError(`rewriting seq ${r.seq} to production volume "${v.name}" at ${r.offset}`, err);
      }
      this.redo.shift();
    }
  }

  /** Puts every write in production and makes production durable (a clean close). */
  async close(): Promise<void> {
    this.barrier();
    await this.writer?.close();
    await Promise.all(this.volumes.volumes.map((v) => v.production!.sync()));
  }

  /** Stops the production thread (after close, or at once on abort). */
  async terminate(): Promise<void> {
    await this.writer?.terminate();
  }
}
