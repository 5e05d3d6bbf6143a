// The writes captured but not applied yet (the replica's lag), as the writer knows them (closed
// windows queued for the apply pipeline, and the open window) and as a reader in another process
// finds them (the journal past the applied point, scanned when it opened).
import { RECORD_HEADER_BYTES } from '../journal/record.js';
import type { RecordRef } from '../journal/reader.js';
import { assert } from '../errors.js';
import { lowerBound } from '../sorted.js';

export interface LagFigures {
  writes: number;
  /** Bytes written by them. */
  bytes: number;
  /** Time of the oldest (ms); null when there is none. */
  oldestTime: number | null;
}

export interface UnappliedWrites {
  /** The writes after `appliedSeq` not applied yet. */
  lag(appliedSeq: number): LagFigures;
  /** Journal bytes (record headers and payloads) of those writes stamped after `sinceMs`. */
  journalBytesSince(appliedSeq: number, sinceMs: number): number;
}

/** A run of consecutive writes: a closed window or the open one. */
interface WriteRun {
  firstSeq: number;
  lastSeq: number;
  bytes: number;
  t1: number;
  t2: number;
}

/** The writer's view: closed windows waiting in the apply pipeline, then the open window. */
export function writerUnapplied(queued: () => readonly WriteRun[], open: () => WriteRun | null): UnappliedWrites {
  const runs = (appliedSeq: number): WriteRun[] => {
    // The first queued window may be applied already (its index entry appended, not yet dequeued).
    const r = queued().filter((w) => w.lastSeq > appliedSeq);
    const o = open();
    if (o) r.push(o);
    return r;
  };
  return {
    lag(appliedSeq) {
      const r = runs(appliedSeq);
      const writes = r.reduce((n, w) => n + w.lastSeq - w.firstSeq + 1, 0);
      return { writes, bytes: r.reduce((n, w) => n + w.bytes, 0), oldestTime: r.length > 0 ? r[0].t1 : null };
    },
    journalBytesSince(appliedSeq, sinceMs) {
      // Whole windows whose last write is recent: windows are short next to the span measured.
      let bytes = 0;
      for (const w of runs(appliedSeq)) if (w.t2 > sinceMs) bytes += w.bytes + (w.lastSeq - w.firstSeq + 1) * RECORD_HEADER_BYTES;
      return bytes;
    },
  };
}

/** A reader's view: the journal records past the applied point, as its scan found them (seq order). */
export class ScannedTail implements UnappliedWrites {
  private firstSeq = 0;
  private readonly times: number[] = [];
  /** Payload bytes of the records before each index (one more entry than records). */
  private readonly bytesBefore: number[] = [0];

  add(r: RecordRef): void {
    if (this.times.length === 0) this.firstSeq = r.seq;
    assert(r.seq === this.firstSeq + this.times.length, `scanned records are consecutive (seq ${r.seq})`);
    this.times.push(r.time);
    this.bytesBefore.push(this.bytesBefore[this.bytesBefore.length - 1] + r.length);
  }

  lag(appliedSeq: number): LagFigures {
    const i = this.start(appliedSeq);
    const n = this.times.length;
    return { writes: n - i, bytes: this.bytesBefore[n] - this.bytesBefore[i], oldestTime: i < n ? this.times[i] : null };
  }

  journalBytesSince(appliedSeq: number, sinceMs: number): number {
    const n = this.times.length;
    // Times never decrease along the journal.
    const i = Math.max(this.start(appliedSeq), lowerBound(this.times, (t) => t > sinceMs));
    return this.bytesBefore[n] - this.bytesBefore[i] + (n - i) * RECORD_HEADER_BYTES;
  }

  /** Index of the first record after `appliedSeq`. */
  private start(appliedSeq: number): number {
    if (this.times.length === 0) return 0;
    return Math.min(this.times.length, Math.max(0, appliedSeq + 1 - this.firstSeq));
  }
}
