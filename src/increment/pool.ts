// The kernel pool: Piscina workers sharing one WebAssembly memory with the scheduler, carved into
// a journal region (a window's records, read once from the journal) and slots (one chunk of changed
// blocks each: old blocks, new blocks, a fragment table and the encoded section body). Tasks carry
// pointers only; no block is copied between threads.
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { compiledWorkerFile } from '../worker-file.js';
import { Piscina } from 'piscina';
import { assert } from '../errors.js';
import { bestVariant, createSharedMemory, KERNEL_HEAP_START, type KernelVariant } from '../kernels/kernels.js';
import { encodedBlockBytesMax } from '../kernels/format.js';
import type { BuildResult, IoFailure, PoolTask } from './tasks.js';
import { RECORD_HEADER_BYTES } from '../journal/record.js';

export interface Slot {
  id: number;
  oldBlocks: number;
  newBlocks: number;
  table: number;
  tableEntries: number;
  out: number;
  outBytes: number;
  blocksMax: number;
}

export interface PoolOptions {
  threads?: number;
  blockSize: number;
  chunkBytes: number;
  windowBytesMax: number;
  windowWritesMax: number;
  variant?: KernelVariant;
}

const FRAGMENTS_PER_TASK = 8192;
const ALIGN = 64;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

function workerFile(): string {
  return pathToFileURL(compiledWorkerFile(import.meta.url, 'increment', 'worker.js', 'kernel pool worker')).href;
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
    const blocksMax = Math.max(1, Math.floor(opts.chunkBytes / opts.blockSize));
    const chunk = blocksMax * opts.blockSize;
    // Room for the worst case of both increments, plus one block of slack for the backward choice.
    const outBytes = align(8 * blocksMax + 8 * (blocksMax + 1) + (2 * blocksMax + 1) * encodedBlockBytesMax(opts.blockSize));
    const slotBytes = 2 * chunk + align(12 * FRAGMENTS_PER_TASK) + outBytes;
    const journalBytes = align(opts.windowBytesMax + opts.windowWritesMax * RECORD_HEADER_BYTES);
    const slotCount = this.threads * 2;
    const tableBytes = align(12 * opts.windowWritesMax);
    const total = KERNEL_HEAP_START + journalBytes + tableBytes + slotCount * slotBytes;
    this.memory = createSharedMemory(total);
    this.view = new Uint8Array(this.memory.buffer);
    this.journalRegion = { ptr: KERNEL_HEAP_START, bytes: journalBytes };
    this.recordTable = { ptr: KERNEL_HEAP_START + journalBytes, entries: opts.windowWritesMax };
    this.slots = [];
    let at = KERNEL_HEAP_START + journalBytes + tableBytes;
    for (let id = 0; id < slotCount; id++) {
      const s: Slot = {
        id, blocksMax,
        oldBlocks: at, newBlocks: at + chunk, table: at + 2 * chunk, tableEntries: FRAGMENTS_PER_TASK,
        out: at + 2 * chunk + align(12 * FRAGMENTS_PER_TASK), outBytes,
      };
      this.slots.push(s);
      at += slotBytes;
    }
    assert(at <= this.memory.buffer.byteLength, 'pool layout fits its memory');
    this.free = [...this.slots];
    this.piscina = new Piscina({
      filename: workerFile(),
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 2 ** 31 - 1,
      workerData: { memory: this.memory, variant: opts.variant ?? bestVariant() },
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
    if (typeof res === 'object') {
      throw Object.assign(new Error(`${task.kind === 'readRuns' ? 'read' : 'write'} failed: ${res.ioError.message}`), { code: res.ioError.code });
    }
  }

  async close(): Promise<void> {
    // Graceful: a task still running finishes first (destroying under it leaves a worker message nobody takes).
    await this.piscina.close();
  }
}
