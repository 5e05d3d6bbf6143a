// Kernel throughput: each WASM kernel (simd build) against its TypeScript reference twin and
// against Buffer.copy of the same number of bytes, side by side, on 1 MiB inputs by default.
// Run alone: npx tsc -p tsconfig.json && node dist/bench/kernels.js [--quick] [--size BYTES]

import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { Bench } from 'tinybench';
import { encodedBlockBytesMax } from '../src/kernels/format.js';
import { createSharedMemory, loadKernels, type KernelVariant } from '../src/kernels/kernels.js';
import { KERNEL_HEAP_START } from '../src/kernels/layout.js';
import * as ref from '../src/kernels/reference.js';
import { prng } from '../src/prng.js';
import { isMain } from './main-module.js';

export interface KernelBenchRow {
  kernel: string;
  /** Bytes processed per call (input bytes; decoded bytes for decoders). */
  bytes: number;
  wasmGBps: number;
  tsGBps: number;
  copyGBps: number;
  wasmVsTs: number;
  wasmVsCopy: number;
}

export interface KernelBenchOptions {
  sizeBytes?: number;
  quick?: boolean;
  variant?: KernelVariant;
}

const BLOCK_BYTES = 4096;
const FRAGMENT_BYTES = 4096;


function gbps(bytes: number, ms: number): number {
  return ms > 0 ? bytes / (ms * 1e6) : 0;
}

export async function benchKernels(opts: KernelBenchOptions = {}): Promise<KernelBenchRow[]> {
  const size = Math.ceil((opts.sizeBytes ?? 1 << 20) / BLOCK_BYTES) * BLOCK_BYTES;
  const blockCount = size / BLOCK_BYTES;
  const encMax = blockCount * encodedBlockBytesMax(BLOCK_BYTES);
  const stride = Math.ceil(encMax / 65536) * 65536 + 65536;

  // Regions, each `stride` apart from KERNEL_HEAP_START: a, b, dst, out, scratch, offsets+table.
  const a = KERNEL_HEAP_START;
  const b = a + stride;
  const dst = b + stride;
  const out = dst + stride;
  const scratch = out + stride;
  const offsets = scratch + stride;
  const table = offsets + 4 * (blockCount + 1) + 64;
  const fragments = Math.max(1, Math.floor(size / FRAGMENT_BYTES));
  const memoryBytes = table + 12 * fragments + 65536;

  const k = loadKernels({ memory: createSharedMemory(memoryBytes), variant: opts.variant ?? 'simd' });
  const mem = k.bytes();
  const rand = prng(42);

  // a: random bytes. b: a copy of a where about half the 16-byte chunks differ, in runs of
  // 1..64 chunks (a realistic delta: rewritten extents, not scattered bytes).
  for (let i = 0; i < size; i++) mem[a + i] = (rand() * 256) | 0;
  mem.copyWithin(b, a, a + size);
  let differing = 0;
  for (let c = 0; c < size / 16; ) {
    const run = 1 + ((rand() * 64) | 0);
    const differ = rand() < 0.5;
    for (let j = 0; j < run && c < size / 16; j++, c++) {
      if (differ) {
        mem[b + 16 * c + ((rand() * 16) | 0)] ^= 1 + ((rand() * 255) | 0);
        differing++;
      }
    }
  }
  // scratch: a ^ b, the input of zeroRunEncode; out: its encoding, the input of the decoder.
  k.xor(scratch, a, b, size);
  const encodedBytes = k.zeroRunEncode(scratch, blockCount, BLOCK_BYTES, out, offsets);
  const encoded = Uint8Array.from(mem.subarray(out, out + encodedBytes));
  const encodedOffsets = Uint8Array.from(mem.subarray(offsets, offsets + 4 * (blockCount + 1)));
  // Coalesce table: fragments of 4 KiB from a to random, overlapping places in dst.
  const view = new DataView(mem.buffer);
  for (let i = 0; i < fragments; i++) {
    view.setUint32(table + 12 * i, dst + ((rand() * (size - FRAGMENT_BYTES)) | 0), true);
    view.setUint32(table + 12 * i + 4, a + i * FRAGMENT_BYTES, true);
    view.setUint32(table + 12 * i + 8, FRAGMENT_BYTES, true);
  }

  const copySrc = Buffer.from(mem.buffer, a, size);
  const copyDst = Buffer.from(mem.buffer, dst, size);
  const restoreEncoding = (): void => {
    mem.set(encoded, out);
    mem.set(encodedOffsets, offsets);
  };

  interface Case {
    kernel: string;
    bytes: number;
    wasm: () => void;
    ts: () => void;
    before?: () => void;
  }
  const cases: Case[] = [
    { kernel: 'xor', bytes: size, wasm: () => k.xor(dst, a, b, size), ts: () => ref.xor(mem, dst, a, b, size) },
    // dst = a: two buffers instead of three (dst, an output region, stands in for a). At 1 MiB three buffers overflow a 2 MiB L2, so the
    // row above measures the cache hierarchy as much as the kernel.
    {
      kernel: 'xor (in place)',
      bytes: size,
      wasm: () => k.xor(dst, dst, a, size),
      ts: () => ref.xor(mem, dst, dst, a, size),
    },
    {
      kernel: 'deltaEncode',
      bytes: size,
      wasm: () => k.deltaEncode(a, b, blockCount, BLOCK_BYTES, out, offsets),
      ts: () => ref.deltaEncode(mem, a, b, blockCount, BLOCK_BYTES, out, offsets),
    },
    {
      kernel: 'zeroRunEncode',
      bytes: size,
      wasm: () => k.zeroRunEncode(scratch, blockCount, BLOCK_BYTES, out, offsets),
      ts: () => ref.zeroRunEncode(mem, scratch, blockCount, BLOCK_BYTES, out, offsets),
    },
    {
      kernel: 'zeroRunDecodeBlocks',
      bytes: size,
      before: restoreEncoding,
      wasm: () => k.zeroRunDecodeBlocks(out, offsets, blockCount, dst, BLOCK_BYTES, 0, encodedBytes),
      ts: () => ref.zeroRunDecodeBlocks(mem, out, offsets, blockCount, dst, BLOCK_BYTES, 0, encodedBytes),
    },
    {
      kernel: 'zeroRunDecodeBlocks (xor)',
      bytes: size,
      before: restoreEncoding,
      wasm: () => k.zeroRunDecodeBlocks(out, offsets, blockCount, dst, BLOCK_BYTES, 1, encodedBytes),
      ts: () => ref.zeroRunDecodeBlocks(mem, out, offsets, blockCount, dst, BLOCK_BYTES, 1, encodedBytes),
    },
    {
      kernel: `coalesce (${fragments} x ${FRAGMENT_BYTES / 1024} KiB)`,
      bytes: fragments * FRAGMENT_BYTES,
      wasm: () => k.coalesce(table, fragments),
      ts: () => ref.coalesce(mem, table, fragments),
    },
    {
      kernel: 'crc32c',
      bytes: size,
      wasm: () => k.crc32c(a, size),
      ts: () => ref.crc32cAt(mem, a, size),
    },
  ];

  const time = opts.quick ? 60 : 400;
  const bench = new Bench({
    time,
    warmupTime: opts.quick ? 20 : 100,
    iterations: opts.quick ? 8 : 32,
    warmupIterations: 8,
    throws: true,
  });
  for (const c of cases) {
    const copyBytes = c.bytes;
    bench.add(`${c.kernel}|wasm`, c.wasm, c.before ? { beforeAll: c.before } : {});
    bench.add(`${c.kernel}|ts`, c.ts, c.before ? { beforeAll: c.before } : {});
    bench.add(`${c.kernel}|copy`, () => copySrc.copy(copyDst, 0, 0, copyBytes));
  }
  await bench.run();

  const medianMs = new Map<string, number>();
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`bench task ${task.name} did not complete: ${result.state}`);
    medianMs.set(task.name, result.latency.p50);
  }
  const rows = cases.map((c): KernelBenchRow => {
    const wasmGBps = gbps(c.bytes, medianMs.get(`${c.kernel}|wasm`)!);
    const tsGBps = gbps(c.bytes, medianMs.get(`${c.kernel}|ts`)!);
    const copyGBps = gbps(c.bytes, medianMs.get(`${c.kernel}|copy`)!);
    return {
      kernel: c.kernel,
      bytes: c.bytes,
      wasmGBps: round(wasmGBps),
      tsGBps: round(tsGBps),
      copyGBps: round(copyGBps),
      wasmVsTs: round(tsGBps > 0 ? wasmGBps / tsGBps : 0),
      wasmVsCopy: round(copyGBps > 0 ? wasmGBps / copyGBps : 0),
    };
  });
  lastBenchContext = { differingChunkRatio: differing / (size / 16), encodedBytes, variant: k.variant };
  // Keep the native CRC visible as a yardstick without widening the row type.
  lastNativeCrc32cGBps = measureOnce(() => nativeCrc32c(copySrc), size);
  // Context for the three-buffer xor row (which still compares with the copy of `size` bytes):
  // Buffer.copy of 1.5 x size touches the same 3 x size bytes as the xor (read a, b; write dst).
  const footprintSrc = Buffer.alloc(size + (size >> 1), 1);
  const footprintDst = Buffer.alloc(size + (size >> 1));
  lastSameFootprintCopyGBps = measureOnce(() => footprintSrc.copy(footprintDst), size);
  return rows;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function measureOnce(fn: () => unknown, bytes: number): number {
  for (let i = 0; i < 20; i++) fn();
  const runs = 200;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) fn();
  return round(gbps(bytes * runs, performance.now() - t0));
}

let lastBenchContext: { differingChunkRatio: number; encodedBytes: number; variant: KernelVariant } | undefined;
let lastNativeCrc32cGBps = 0;
let lastSameFootprintCopyGBps = 0;

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const sizeAt = args.indexOf('--size');
  const rows = await benchKernels({
    quick: args.includes('--quick'),
    sizeBytes: sizeAt >= 0 ? Number(args[sizeAt + 1]) : undefined,
  });
  console.table(rows);
  console.log(
    `input: ${((lastBenchContext?.differingChunkRatio ?? 0) * 100).toFixed(1)}% of 16-byte chunks differ; ` +
      `encoding ${lastBenchContext?.encodedBytes} bytes; variant ${lastBenchContext?.variant}; ` +
      `native @node-rs/crc32 crc32c: ${lastNativeCrc32cGBps} GB/s`,
  );
  console.log(
    `Buffer.copy touching the xor's footprint (1.5 x size copied, 3 x size touched): ` +
      `${lastSameFootprintCopyGBps} GB/s counted in size bytes, comparable with the xor row's wasmGBps`,
  );
  console.log(JSON.stringify(rows, null, 2));
}
