// The production writer: a thread of its own that writes captured writes to production volumes, so
// the event loop only journals a write and copies its bytes into a shared ring. Scattered page-cache
// writes to a large sparse volume cost the event loop more than anything else on the capture path
// (with them moved out, 4 KiB random writes through `rewind serve` went from ~38k to ~45k IOPS; with
// production writes switched off entirely, ~62k). PRODUCTION_RING_DEFAULTS: an 8 MiB ring, writes up
// to 16 KiB; the thread (POLL_MS, IDLE_POLLS) looks at the ring every millisecond while writes keep
// coming (at most 1,000 wake-ups a second, not one per write) and sleeps after 20 empty looks.
//
// Rules that keep production exact:
// - Writes are done one at a time, in the order queued (the seq order), by the one thread.
// - Whoever touches production on the event loop first waits until the ring is empty (`drain`):
//   reads, the synchronous fallback for writes too large for the ring, redo, close.
// - A failed write stops the thread; that write and every one queued after it are handed back
//   (`takeFailed`) to be written again from the journal, in order, before anything else.
// - A crash may lose queued writes, as it may lose unsynced ones: after an unclean stop production is
//   rebuilt from the replica and the journal, which holds every write acknowledged.
import { getSystemErrorName } from 'node:util';
import { Worker } from 'node:worker_threads';
import { assert, RewindError } from '../errors.js';
import { compiledWorkerFile, workerExecArgv } from '../worker-file.js';

/**
 * Control words (Int32Array indexes) shared with the thread. `tail` and `head` count entries modulo
 * 2^32 (int32 arithmetic, `(a + 1) | 0`): only their difference and equality mean anything, so they
 * wrap after 2^31 writes (hours at full speed) without a stall. An entry's slot is its count modulo
 * the (power of two) number of entries, which stays consistent across the wrap.
 */
export const CTRL = {
  /** Entries queued so far (written by the event loop). */
  tail: 0,
  /** Entries written so far (written by the thread). */
  head: 1,
  /** 1 while the thread is stopped on a failed write. */
  failed: 2,
  /** The failed write's errno (negative, as Node reports it). */
  errno: 3,
  /** 1 asks the thread to exit once the ring is empty. */
  stop: 4,
  /** 1 while the thread waits for work without a timeout: a queued write must wake it. */
  sleeping: 5,
  /** 1 once the thread has stopped for good on an unexpected error (nothing queued gets written). */
  dead: 6,
  words: 8,
} as const;

/** Fields of one entry (Float64Array): file descriptor, volume offset, logical ring position, length. */
export const ENTRY_FIELDS = 4;

export interface ProductionWriterOptions {
  /** Bytes of the data ring. */
  ringBytes: number;
  /** Entries in the ring (a power of two). */
  entries: number;
  /**
   * Larger writes are left to the event loop (at most a quarter of the ring). For them the system
   * call is cheap against the bytes, and copying them into the ring costs more than it saves: with
   * the thread, 64 KiB writes measured 5-20 % slower, 4 KiB ones 15-25 % faster.
   */
  writeBytesMax: number;
  /** Where the entry counters start (tests start them near the int32 wrap); 0 by default. */
  firstCount?: number;
}

export const PRODUCTION_RING_DEFAULTS: ProductionWriterOptions = { ringBytes: 8 * 2 ** 20, entries: 8192, writeBytesMax: 16 * 1024 };

/** A failed production write and those queued after it, each with what the caller tagged it with. */
export interface ProductionFailure<T> {
  tags: T[];
  /** The OS error of the failed write (errno, code), or an IO RewindError when the thread itself died. */
  error: NodeJS.ErrnoException | RewindError;
}

export class ProductionWriter<T> {
  private readonly ctrl: Int32Array;
  private readonly entries: Float64Array;
  private readonly data: Uint8Array;
  private readonly worker: Worker;
  /** Per queued entry: what the caller tagged it with, and where its bytes start in the ring (logical). */
  private readonly tags: (T | undefined)[];
  private readonly starts: Float64Array;
  /** Logical position of the next byte written into the ring (physical: modulo its size). */
  private writePos = 0;
  private tail = 0;
  private exited = false;
  private threadError: Error | null = null;

  constructor(readonly opts: ProductionWriterOptions = PRODUCTION_RING_DEFAULTS) {
    assert(opts.ringBytes >= 4096 && opts.entries >= 16 && (opts.entries & (opts.entries - 1)) === 0, 'production ring sizes (entries: a power of two)');
    const ctrlSab = new SharedArrayBuffer(CTRL.words * 4);
    const entriesSab = new SharedArrayBuffer(opts.entries * ENTRY_FIELDS * 8);
    const dataSab = new SharedArrayBuffer(opts.ringBytes);
    this.ctrl = new Int32Array(ctrlSab);
    this.entries = new Float64Array(entriesSab);
    this.data = new Uint8Array(dataSab);
    this.tags = new Array(opts.entries);
    this.starts = new Float64Array(opts.entries);
    this.tail = (opts.firstCount ?? 0) | 0;
    Atomics.store(this.ctrl, CTRL.tail, this.tail);
    Atomics.store(this.ctrl, CTRL.head, this.tail);
    const execArgv = workerExecArgv();
    this.worker = new Worker(compiledWorkerFile(import.meta.url, 'volumes', 'production-thread.js', 'production writer thread'), { workerData: { ctrl: ctrlSab, entries: entriesSab, data: dataSab }, execArgv });
    this.worker.unref();
    this.worker.once('exit', () => (this.exited = true));
    // An error the thread did not expect ends it (it marks itself dead first); what it left queued is
    // handed back by takeFailed like a failed write. Without a listener it would end the process.
    this.worker.on('error', (err) => {
      this.threadError ??= err;
      Atomics.store(this.ctrl, CTRL.dead, 1);
    });
  }

  /** Writes that can be queued: up to the option, and a quarter of the ring (so a full ring never stalls one write for long). */
  get writeBytesMax(): number {
    return Math.min(this.opts.writeBytesMax, this.opts.ringBytes >>> 2);
  }

  /**
   * Queues a write of `data` at `offset` of the file `fd`, copying the bytes. Returns false (nothing
   * queued) when the write is larger than writeBytesMax or the thread stopped on a failure; the
   * caller then drains and writes it itself. Waits (blocking) while the ring is full.
   */
  enqueue(fd: number, offset: number, data: Uint8Array, tag: T): boolean {
    const len = data.byteLength;
    if (len > this.writeBytesMax || this.hasFailed() || this.exited) return false;
    const ring = this.opts.ringBytes;
    let start = this.writePos;
    // A write's bytes lie in one piece: skip to the ring's start when they would wrap.
    if ((start % ring) + len > ring) start += ring - (start % ring);
    // Room: the bytes from the oldest unwritten entry's start to our end must fit the ring, and the entry slot must be free.
    for (;;) {
      const head = Atomics.load(this.ctrl, CTRL.head);
      const inUseFrom = head === this.tail ? start : this.starts[head & (this.opts.entries - 1)];
      if (((this.tail - head) | 0) < this.opts.entries && start + len - inUseFrom <= ring) break;
      if (this.hasFailed()) return false;
      Atomics.notify(this.ctrl, CTRL.tail, 1);
      Atomics.wait(this.ctrl, CTRL.head, head, 100);
    }
    const phys = start % ring;
    this.data.set(data, phys);
    const slot = this.tail & (this.opts.entries - 1);
    const e = slot * ENTRY_FIELDS;
    this.entries[e] = fd;
    this.entries[e + 1] = offset;
    this.entries[e + 2] = phys;
    this.entries[e + 3] = len;
    this.tags[slot] = tag;
    this.starts[slot] = start;
    this.writePos = start + len;
    this.tail = (this.tail + 1) | 0;
    Atomics.store(this.ctrl, CTRL.tail, this.tail);
    // While writes keep coming the thread looks at the ring every millisecond on its own (a wake-up
    // per write would cost more than the write); once idle it sleeps and the next write wakes it.
    if (Atomics.load(this.ctrl, CTRL.sleeping) === 1) Atomics.notify(this.ctrl, CTRL.tail, 1);
    return true;
  }

  /** Writes queued and not yet done. */
  get pending(): number {
    return (this.tail - Atomics.load(this.ctrl, CTRL.head)) | 0;
  }

  hasFailed(): boolean {
    return Atomics.load(this.ctrl, CTRL.failed) === 1 || this.isDead();
  }

  private isDead(): boolean {
    return Atomics.load(this.ctrl, CTRL.dead) === 1;
  }

  /**
   * Wakes the thread now if writes are queued, rather than at its next look (up to POLL_MS later):
   * for a caller that will wait for them (a flush, before its fsync), so they are written meanwhile.
   */
  wake(): void {
    if (this.tail !== Atomics.load(this.ctrl, CTRL.head)) Atomics.notify(this.ctrl, CTRL.tail, 1);
  }

  /** The count of writes queued so far: `drain(queued)` later waits for these and no more. */
  get queued(): number {
    return this.tail;
  }

  /**
   * Blocks until every write queued (or, given `upTo` from `queued`, every write queued until then) is
   * done, or the thread stopped on a failure (see takeFailed).
   */
  drain(upTo = this.tail): void {
    this.wake();
    for (;;) {
      const head = Atomics.load(this.ctrl, CTRL.head);
      if (((upTo - head) | 0) <= 0 || this.hasFailed() || this.exited) return;
      Atomics.wait(this.ctrl, CTRL.head, head, 100);
    }
  }

  /**
   * After a failure: the tags of the failed write and of every write queued after it, in order, and
   * the error. The ring is emptied and the thread goes on with the writes queued from now on.
   */
  takeFailed(): ProductionFailure<T> | null {
    if (!this.hasFailed()) return null;
    const head = Atomics.load(this.ctrl, CTRL.head);
    const tags: T[] = [];
    for (let i = head; i !== this.tail; i = (i + 1) | 0) {
      const slot = i & (this.opts.entries - 1);
      tags.push(this.tags[slot] as T);
      this.tags[slot] = undefined;
    }
    if (this.isDead()) {
      // The thread is gone: everything it left is handed back, and every later write goes the slow way (enqueue refuses).
      Atomics.store(this.ctrl, CTRL.head, this.tail);
      if (tags.length === 0) return null;
      const message = `production writer thread stopped: ${this.threadError?.message ?? 'unexpected error'}`;
      return { tags, error: new RewindError('IO', message, 'EIO', { cause: this.threadError ?? undefined }) };
    }
    const error = writeErrnoError(Atomics.load(this.ctrl, CTRL.errno));
    // Skip the failed entries: the thread resumes at the tail.
    Atomics.store(this.ctrl, CTRL.head, this.tail);
    Atomics.store(this.ctrl, CTRL.failed, 0);
    Atomics.notify(this.ctrl, CTRL.failed);
    return { tags, error };
  }

  /** Waits for the queued writes, then ends the thread. */
  async close(): Promise<void> {
    this.drain();
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    // Unreferenced while it runs (an idle writer must not keep a process alive); waiting for its exit must.
    this.worker.ref();
    Atomics.store(this.ctrl, CTRL.stop, 1);
    Atomics.notify(this.ctrl, CTRL.tail);
    Atomics.notify(this.ctrl, CTRL.failed);
    await exited;
  }

  /** Ends the thread at once; queued writes may be lost (a simulated crash). */
  async terminate(): Promise<void> {
    if (this.exited) return;
    this.worker.ref();
    await this.worker.terminate();
  }
}

/**
 * The error the thread's write(2) returned, rebuilt on this side from its errno (only the number
 * crosses the shared memory): an OS error as Node reports one, with `errno` and `code` (EIO, ENOSPC,
 * ...), which the store's redo path reports and retries by.
 */
function writeErrnoError(errno: number): NodeJS.ErrnoException {
  let code = 'EIO';
  try {
    code = getSystemErrorName(errno);
  } catch {
    // Not a known errno: report it as an I/O error.
  }
  return Object.assign(new Error(`production write failed: ${code}`), { errno, code, syscall: 'write' });
}
