// A worker of the kernel pool: runs WebAssembly kernels over the shared arena, and moves runs of
// blocks between files and that arena when the scheduler hands it a descriptor (so the event loop
// does not spend itself on scattered page-cache copies). It never copies a block between threads:
// the scheduler put the bytes in shared memory and reads the results there.
import { readSync, writeSync } from 'node:fs';
import { workerData } from 'piscina';
import { loadKernels, type KernelVariant } from '../kernels/kernels.js';
import type { PoolTask, BuildResult, IoFailure } from './tasks.js';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { sectionLayout } from './block-encoding.js';
import { OFFSET_BYTES } from '../kernels/format.js';
import { RECORD_ENTRY_BYTES } from '../kernels/layout.js';
import { nameThisThread } from '../thread-name.js';

nameThisThread('rw-kernel');

const { memory, variant } = workerData as { memory: WebAssembly.Memory; variant: KernelVariant };
const k = loadKernels({ memory, variant });
const mem = k.bytes();
const view = new DataView(memory.buffer);

/**
 * CRC-32C of a range of shared memory. The native one (the CPU's crc32 instruction) rather than the
 * WebAssembly kernel, which is table-driven and several times slower (WebAssembly has no carry-less
 * multiply or CRC instruction; README, Performance); both compute the same function, which the
 * kernel tests check.
 */
const crc32c = (ptr: number, len: number): number => nativeCrc32c(Buffer.from(memory.buffer as ArrayBuffer, ptr, len), 0) >>> 0;

/** Calls `fn` for each (file position, memory pointer, length) triple of `runs`; returns the bytes they cover. */
function eachRun(runs: number[], fn: (pos: number, ptr: number, len: number) => void): number {
  let total = 0;
  for (let r = 0; r < runs.length; r += 3) {
    fn(runs[r], runs[r + 1], runs[r + 2]);
    total += runs[r + 2];
  }
  return total;
}

function readRuns(fd: number, runs: number[]): number {
  return eachRun(runs, (pos, dst, len) => {
    let got = 0;
    while (got < len) {
      const n = readSync(fd, mem, dst + got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    if (got < len) mem.fill(0, dst + got, dst + len);
  });
}

function writeRuns(fd: number, runs: number[]): number {
  return eachRun(runs, (pos, src, len) => {
    let done = 0;
    while (done < len) done += writeSync(fd, mem, src + done, len - done, pos + done);
  });
}

function io(fn: () => number): number | IoFailure {
  try {
    return fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ioError: { code: e.code ?? 'EIO', message: e.message } };
  }
}

export default function run(task: PoolTask): BuildResult | number | IoFailure {
  switch (task.kind) {
    case 'readRuns':
      return io(() => readRuns(task.fd, task.runs));
    case 'writeRuns':
      return io(() => writeRuns(task.fd, task.runs));
    case 'coalesce':
      k.coalesce(task.table, task.count);
      return 0;
    case 'build': {
      const n = task.blockCount;
      const B = task.blockSize;
      if (task.count > 0) k.coalesce(task.table, task.count);
      const layout = sectionLayout(n, 0, 0);
      // Forward table: the CRC32C of each new block (its contents are the window's journal records);
      // a merge, which has no new blocks, wrote the CRCs it carries over there already.
      const crcs = task.out + layout.fwdOffsets;
      if (task.newBlocks !== 0) for (let i = 0; i < n; i++) view.setUint32(crcs + OFFSET_BYTES * i, crc32c(task.newBlocks + i * B, B), true);
      view.setUint32(crcs + OFFSET_BYTES * n, 0, true);
      // Backward increment: each old block itself, so the pack gives it back without the new one.
      const bwdBytes = k.zeroRunEncode(task.oldBlocks, n, B, task.out + layout.fwdData, task.out + layout.bwdOffsets);
      return { fwdBytes: 0, bwdBytes, bodyCrc: crc32c(task.out, layout.fwdData + bwdBytes) };
    }
    case 'verify':
      for (let i = task.from; i < task.from + task.count; i++) {
        const at = task.table + RECORD_ENTRY_BYTES * i;
        if (crc32c(view.getUint32(at, true), view.getUint32(at + 4, true)) !== view.getUint32(at + 8, true)) return i;
      }
      return -1;
    case 'decode':
      return k.zeroRunDecodeBlocks(task.enc, task.offsets, task.blockCount, task.dst, task.blockSize, task.xorMode, task.encLen);
  }
}
