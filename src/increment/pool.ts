// The kernel pool: Piscina workers sharing one WebAssembly memory with the scheduler, carved into
// a journal region (a window's records, read once from the journal), a record table and slots (one
// chunk of changed blocks each) as src/kernels/layout.ts declares. Tasks carry pointers only; no
// block is copied between threads.
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { compiledWorkerFile, workerExecArgv } from '../worker-file.js';
import { Piscina } from 'piscina';
import { assert } from '../errors.js';
import { bestVariant, createSharedMemory, type KernelVariant } from '../kernels/kernels.js';
import { arenaLayout, KERNEL_HEAP_START, type Slot } from '../kernels/layout.js';
import type { BuildResult, IoFailure, PoolTask } from './tasks.js';

export type { Slot } from '../kernels/layout.js';

export interface PoolOptions {
  threads?: number;
  blockSize: number;
  chunkBytes: number;
  windowBytesMax: number;
  windowWritesMax: number;
  variant?: KernelVariant;
}

function workerFile(): string {
  return pathToFileURL(compiledWorkerFile(import.meta.url, 'increment', 'worker.js', 'kernel pool worker')).href;
}

/**
 * A worker's failed system call, rebuilt as the errno error it threw there (a thrown error loses its
 * `code` crossing threads). It stays an OS error, not a RewindError: callers wrap it with what they
 * were doing and map its code, as for their own calls (src/store.ts retries ENOSPC, EDQUOT, EIO and
 * EAGAIN, and stops the store on anything else).
 */
function systemCallError(call: 'read' | 'write', failure: IoFailure): NodeJS.ErrnoException {
  return Object.assign(new Error(`${call} failed: ${failure.ioError.message}`), { code: failure.ioError.code });
}

export class KernelPool {
  readonly memory: WebAssembly.Memory;
  readonly threads: number;
  readonly journalRegion: { ptr: number; bytes: number };
  /** One entry (ptr, len, crc: u32 each) per record of the window being built. */
  readonly recordTable: { ptr: number; entries: number };
  readonly slots: Slot[];
  private readonly piscina: Piscina;
  private readonly free: Slot[];
  private readonly waiting: ((s: Slot) => void)[] = [];
  private view: Uint8Array;

  constructor(readonly opts: PoolOptions) {
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
    const layout = arenaLayout({ ...opts, threads: this.threads });
    this.memory = createSharedMemory(layout.totalBytes);
    this.view = new Uint8Array(this.memory.buffer);
    this.journalRegion = layout.journalRegion;
    this.recordTable = layout.recordTable;
    this.slots = layout.slots;
    assert(layout.totalBytes <= this.memory.buffer.byteLength, 'the arena fits its memory');
    this.free = [...this.slots];
    this.piscina = new Piscina({
      filename: workerFile(),
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 2 ** 31 - 1,
      workerData: { memory: this.memory, variant: opts.variant ?? bestVariant() },
      execArgv: workerExecArgv(),
    });
  }

  /** The whole shared memory as bytes. */
  bytes(): Uint8Array {
    return this.view;
  }

  /** A Buffer over part of the shared memory (no copy). */
  buffer(ptr: number, len: number): Buffer {
    return Buffer.from(this.memory.buffer as ArrayBuffer, ptr, len);
  }

  acquire(): Promise<Slot> {
    const s = this.free.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }

  run(task: Exclude<PoolTask, { kind: 'readRuns' | 'writeRuns' }>): Promise<BuildResult | number> {
    return this.piscina.run(task);
  }

  /**
   * Reads (file position, pointer, length) runs of a file into shared memory on a worker; bytes past
   * the end of the file read as zeros. Rejects with the system call's error (its code kept).
   */
  readRuns(fd: number, runs: number[]): Promise<void> {
    return this.io({ kind: 'readRuns', fd, runs });
  }

  /** Writes (file position, pointer, length) runs of shared memory to a file on a worker. */
  writeRuns(fd: number, runs: number[]): Promise<void> {
    return this.io({ kind: 'writeRuns', fd, runs });
  }

  private async io(task: Extract<PoolTask, { kind: 'readRuns' | 'writeRuns' }>): Promise<void> {
    assert(task.runs.length % 3 === 0, 'I/O runs come in triples');
    for (let r = 0; r < task.runs.length; r += 3) {
      assert(task.runs[r + 1] >= KERNEL_HEAP_START && task.runs[r + 1] + task.runs[r + 2] <= this.view.byteLength, 'I/O run lies in the shared memory');
    }
    const res = (await this.piscina.run(task)) as number | IoFailure;
    if (typeof res === 'object') throw systemCallError(task.kind === 'readRuns' ? 'read' : 'write', res);
  }

  async close(): Promise<void> {
    // Graceful: a task still running finishes first (destroying under it leaves a worker message nobody takes).
    await this.piscina.close();
  }
}
