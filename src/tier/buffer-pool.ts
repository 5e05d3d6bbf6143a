// The tier's upload buffers: a fixed number of equal buffers, lent one at a time and reused from
// upload to upload. Streamed request bodies allocated a new 64 KiB buffer per read; a GiB shipped
// left a GiB of dead buffers that V8 frees only at its next full collection, and serve's resident
// memory grew by 30–60 MiB while it shipped (README, memory of the second tier). With the pool the
// uploads' memory is its size, whatever they ship.
import { assert } from '../errors.js';

export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((buf: Buffer) => void)[] = [];
  /** Buffers made and not discarded: free, lent, or about to be handed to a waiter. */
  private made = 0;

  constructor(readonly bufferBytes: number, readonly count: number) {
    assert(Number.isSafeInteger(bufferBytes) && bufferBytes > 0, `a pool buffer has a positive size (${bufferBytes})`);
    assert(Number.isSafeInteger(count) && count > 0, `a pool has at least one buffer (${count})`);
  }

  /** A buffer of `bufferBytes`, once one is free (made on first need, up to `count`). */
  acquire(): Promise<Buffer> {
    const buf = this.free.pop();
    if (buf) return Promise.resolve(buf);
    if (this.made < this.count) {
      this.made++;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.bufferBytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Gives back a buffer nothing refers to any more. */
  release(buf: Buffer): void {
    assert(buf.byteLength === this.bufferBytes, 'a released buffer is one of the pool');
    const next = this.waiting.shift();
    if (next) next(buf);
    else this.free.push(buf);
  }

  /**
   * Forgets a lent buffer something may still read (a failed request's socket, say): the collector
   * takes it, and the pool makes a new one for the next borrower.
   */
  discard(): void {
    const next = this.waiting.shift();
    if (next) next(Buffer.allocUnsafeSlow(this.bufferBytes));
    else this.made--;
  }

  /** Runs `fn` with a lent buffer: released when it resolves, discarded when it throws. */
  async use<T>(fn: (buf: Buffer) => Promise<T>): Promise<T> {
    const buf = await this.acquire();
    let result: T;
    try {
      result = await fn(buf);
    } catch (err) {
      this.discard();
      throw err;
    }
    this.release(buf);
    return result;
  }
}

/** One upload buffer: a part of a file (S3's smallest part is 5 MiB) or a base chunk. */
export const UPLOAD_BUFFER_BYTES = 5 * 2 ** 20;
/** The process's tier upload buffers: what the uploads of files and base chunks hold at most. */
export const uploadBuffers = new BufferPool(UPLOAD_BUFFER_BYTES, 2);
