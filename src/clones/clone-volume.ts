// A writable clone: a volume as it was at a past point (a point-in-time view, which reads the replica,
// the packs and the journal and copies nothing), with the clone's own writes in a copy-on-write
// overlay on top. A block the clone has written reads from the overlay; every other block from the
// view. Nothing here writes production, the replica, the journal or the history.
//
// The overlay holds whole blocks: a write that covers part of a block first takes the rest of it
// from the clone as it reads now. Past the clone's byte limit (whole blocks held), a write that needs
// more blocks fails with ENOSPC and changes nothing.
import { noSpace, outOfRange } from '../errors.js';
import type { PointInTimeView } from '../restore/view.js';
import type { CloneRecord } from './clone-record.js';
import type { Overlay } from './overlay.js';

/** Write-zeroes is written in pieces of this size. */
const ZERO_PIECE_BYTES = 1 << 20;

export class CloneVolume {
  private zeroes: Buffer | null = null;

  constructor(readonly record: CloneRecord, private readonly view: PointInTimeView, private readonly overlay: Overlay) {}

  get name(): string {
    return this.record.name;
  }

  get size(): number {
    return this.view.size;
  }

  /** Bytes the overlay holds (whole blocks written to the clone). */
  get usedBytes(): number {
    return this.overlay.usedBytes;
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw outOfRange(`clone ${this.name}`, offset, length, this.size);
    }
  }

  /** Reads the clone: its own blocks from the overlay, the rest as the volume was at its point. */
  read(offset: number, length: number, out: Buffer = Buffer.allocUnsafe(length)): Buffer {
    this.checkRange(offset, length);
    const B = this.overlay.blockSize;
    const end = offset + length;
    // Runs of blocks that are all in the overlay, or all not.
    for (let pos = offset; pos < end; ) {
      const held = this.overlay.has(Math.floor(pos / B));
      let runEnd = (Math.floor(pos / B) + 1) * B;
      while (runEnd < end && this.overlay.has(runEnd / B) === held) runEnd += B;
      const to = Math.min(end, runEnd);
      if (held) this.overlay.read(out, pos - offset, pos, to - pos);
      else this.view.read(pos, to - pos, out.subarray(pos - offset, to - offset));
      pos = to;
    }
    return out;
  }

  /** Writes to the overlay only. `data` may be reused by the caller once this returns. */
  write(offset: number, data: Buffer): void {
    this.checkRange(offset, data.byteLength);
    if (data.byteLength === 0) return;
    const B = this.overlay.blockSize;
    const end = offset + data.byteLength;
    const first = Math.floor(offset / B);
    const count = Math.floor((end - 1) / B) - first + 1;
    this.checkRoom(first, count, offset, data.byteLength);
    if (offset % B === 0 && end % B === 0) {
      this.overlay.write(first, data);
      return;
    }
    // Partial blocks at either end are completed from the clone as it reads now.
    const buf = Buffer.allocUnsafe(count * B);
    if (offset % B !== 0) this.read(first * B, B, buf.subarray(0, B));
    if (end % B !== 0 && (count > 1 || offset % B === 0)) this.read((first + count - 1) * B, B, buf.subarray((count - 1) * B));
    data.copy(buf, offset - first * B);
    this.overlay.write(first, buf);
  }

  /** Zeroes a range, as writes of zeroes (the space limit is checked for the whole range first). */
  writeZeroes(offset: number, length: number): void {
    this.checkRange(offset, length);
    if (length === 0) return;
    const B = this.overlay.blockSize;
    const first = Math.floor(offset / B);
    this.checkRoom(first, Math.floor((offset + length - 1) / B) - first + 1, offset, length);
    this.zeroes ??= Buffer.alloc(ZERO_PIECE_BYTES);
    for (let at = 0; at < length; at += ZERO_PIECE_BYTES) this.write(offset + at, this.zeroes.subarray(0, Math.min(ZERO_PIECE_BYTES, length - at)));
  }

  private checkRoom(first: number, count: number, offset: number, length: number): void {
    const max = this.record.maxBytes;
    if (max === null) return;
    const needed = this.overlay.missing(first, count) * this.overlay.blockSize;
    if (needed > 0 && this.overlay.usedBytes + needed > max) {
      throw noSpace(`clone ${this.name}: writing ${offset}+${length} needs ${needed} more bytes of overlay; it holds ${this.overlay.usedBytes} of its limit of ${max} (--max-bytes)`);
    }
  }

  /** Makes every write to the clone before the call durable. */
  flush(): Promise<void> {
    return this.overlay.flush();
  }

  /** Flushes, closes the overlay and ends the view's lease. */
  async close(): Promise<void> {
    try {
      await this.overlay.close();
    } finally {
      this.view.close();
    }
  }

  /** Stops without flushing, as a crash would (tests and simulations). */
  abandon(): void {
    this.overlay.abandon();
    this.view.close();
  }
}
