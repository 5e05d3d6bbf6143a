// Host side of the WASM kernels: finds and compiles build/kernels-<variant>.wasm (once per
// variant), instantiates it over a shared memory, checks that the module agrees with the memory
// layout the host declares (src/kernels/layout.ts), and exposes thin typed calls that check
// every pointer range first. Callers own the memory from KERNEL_HEAP_START upward; below it
// lives the module's static data. The memory never grows, so the byte view is cached.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, RewindError } from '../errors.js';
import { encodedBlockBytesMax, isValidBlockSize, OFFSET_BYTES } from './format.js';
import {
  FRAGMENT_BYTES, HOST_MODULE_LAYOUT, KERNEL_HEAP_START, MEMORY_PAGE_BYTES, MEMORY_PAGES_MAX, type ModuleLayout,
} from './layout.js';

export type KernelVariant = 'simd' | 'scalar';

const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

/** An argument the host boundary refuses: the caller broke the kernels' contract (a bug, never input). */
const boundary = (message: string) => new RewindError('INVARIANT', `kernel boundary: ${message}`);

/** A shared, non-growing memory (initial = maximum) the kernels can import. */
export function createSharedMemory(bytes: number): WebAssembly.Memory {
  if (!Number.isInteger(bytes) || bytes <= KERNEL_HEAP_START) {
    throw boundary(`kernel memory must be an integer number of bytes above ${KERNEL_HEAP_START}, got ${bytes}`);
  }
  const pages = Math.ceil(bytes / MEMORY_PAGE_BYTES);
  if (pages > MEMORY_PAGES_MAX) {
    throw boundary(`kernel memory of ${bytes} bytes exceeds the wasm32 limit of ${MEMORY_PAGES_MAX * MEMORY_PAGE_BYTES}`);
  }
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    assert(parent !== dir, `${fileURLToPath(import.meta.url)} lies in a package (a package.json above it)`);
    dir = parent;
  }
}

export function kernelWasmPath(variant: KernelVariant): string {
  return join(packageRoot(), 'build', `kernels-${variant}.wasm`);
}

const wasmBytes = new Map<KernelVariant, Uint8Array<ArrayBuffer>>();
const modules = new Map<KernelVariant, WebAssembly.Module>();

function readWasm(variant: KernelVariant): Uint8Array<ArrayBuffer> {
  let bytes = wasmBytes.get(variant);
  if (!bytes) {
    const path = kernelWasmPath(variant);
    assert(existsSync(path), `kernel module ${path} is built (run \`npm run build:wasm\`)`);
    bytes = new Uint8Array(readFileSync(path));
    wasmBytes.set(variant, bytes);
  }
  return bytes;
}

function compile(variant: KernelVariant): WebAssembly.Module {
  let module = modules.get(variant);
  if (!module) {
    module = new WebAssembly.Module(readWasm(variant));
    modules.set(variant, module);
  }
  return module;
}

let best: KernelVariant | undefined;

/** 'simd' when this runtime validates the SIMD build, else 'scalar'. */
export function bestVariant(): KernelVariant {
  best ??= WebAssembly.validate(readWasm('simd')) ? 'simd' : 'scalar';
  return best;
}

export interface Kernels {
  readonly memory: WebAssembly.Memory;
  readonly variant: KernelVariant;
  /** A view over the whole memory (cached; the memory never grows). */
  bytes(): Uint8Array;
  /** dst[i] = a[i] ^ b[i]; dst may equal a or b, but must not partially overlap them. */
  xor(dst: number, a: number, b: number, len: number): void;
  /** Applies `count` fragments (u32le dst, src, len) at table + 12 i, in order. */
  coalesce(table: number, count: number): void;
  /** Returns bytes written at `out`; needs blockCount * encodedBlockBytesMax(blockSize) there. */
  zeroRunEncode(src: number, blockCount: number, blockSize: number, out: number, offsets: number): number;
  /** zeroRunEncode of a XOR b, in one pass. */
  deltaEncode(a: number, b: number, blockCount: number, blockSize: number, out: number, offsets: number): number;
  /** Decodes one block; returns bytes consumed or -1 if malformed. */
  zeroRunDecode(enc: number, encLen: number, dst: number, blockSize: number, xorMode: 0 | 1): number;
  /**
   * Decodes blockCount blocks described by an offsets table; returns 0 or -(i + 1) for the
   * first malformed block i (dst is then partly written). `encLen` (bytes readable at enc)
   * defaults to the rest of memory.
   */
  zeroRunDecodeBlocks(enc: number, offsets: number, blockCount: number, dst: number, blockSize: number, xorMode: 0 | 1, encLen?: number): number;
  /** CRC-32C, chainable like @node-rs/crc32: crc32c(b, crc32c(a)) === crc32c(a ‖ b). */
  crc32c(ptr: number, len: number, seed?: number): number;
}

/** The module's exports: the kernels unchecked, and the layout constants it was compiled with. */
interface KernelExports extends Pick<Kernels, 'xor' | 'coalesce' | 'zeroRunEncode' | 'deltaEncode' | 'zeroRunDecode' | 'zeroRunDecodeBlocks' | 'crc32c'> {
  /** The end of the module's static data. */
  heapBase(): number;
  HEAP_START: WebAssembly.Global;
  FRAGMENT_BYTES: WebAssembly.Global;
  CHUNK_BYTES: WebAssembly.Global;
  TOKEN_HEADER_BYTES: WebAssembly.Global;
}

/**
 * Refuses a module whose compiled-in constants disagree with the layout the host declares: the
 * host would hand it regions it reads differently, or place its own data over the module's.
 */
function checkModuleLayout(k: KernelExports, declared: ModuleLayout): void {
  const heapBase = k.heapBase() >>> 0;
  assert(heapBase <= declared.heapStart, `kernel static data (up to ${heapBase}) ends below the heap start ${declared.heapStart}`);
  const compiled: ModuleLayout = {
    heapStart: k.HEAP_START.value >>> 0,
    fragmentBytes: k.FRAGMENT_BYTES.value >>> 0,
    chunkBytes: k.CHUNK_BYTES.value >>> 0,
    tokenHeaderBytes: k.TOKEN_HEADER_BYTES.value >>> 0,
  };
  for (const key of Object.keys(compiled) as (keyof ModuleLayout)[]) {
    assert(compiled[key] === declared[key], `the kernel module's ${key} (${compiled[key]}) is the host's (${declared[key]})`);
  }
}

/** Reads an AssemblyScript string (UTF-16, byte length at ptr - 4) out of the memory. */
function readAsString(memory: WebAssembly.Memory, ptr: number): string {
  if (!ptr) return '';
  const view = new DataView(memory.buffer);
  const byteLength = view.getUint32(ptr - 4, true);
  let text = '';
  for (let i = 0; i < byteLength; i += 2) text += String.fromCharCode(view.getUint16(ptr + i, true));
  return text;
}

/**
 * Instantiates the kernels (synchronously) over `memory` (a shared memory from
 * createSharedMemory, possibly shared with other threads) or over a fresh private 64 MiB one.
 * Instantiating only rewrites the module's static bytes below KERNEL_HEAP_START. `layout` is
 * what the module must agree with: the host's own (layout.ts) unless given.
 */
export function loadKernels(opts: { memory?: WebAssembly.Memory; variant?: KernelVariant; layout?: ModuleLayout } = {}): Kernels {
  const variant = opts.variant ?? bestVariant();
  const memory = opts.memory ?? createSharedMemory(DEFAULT_MEMORY_BYTES);
  if (!(memory.buffer instanceof SharedArrayBuffer)) {
    throw boundary('kernel memory must be shared: use createSharedMemory()');
  }
  const instance = new WebAssembly.Instance(compile(variant), {
    env: {
      memory,
      // A kernel's own check failed: the host passed it something it promised not to.
      abort(message: number, file: number, line: number, column: number): never {
        throw new RewindError(
          'INVARIANT',
          `kernel assertion failed: ${readAsString(memory, message)} (${readAsString(memory, file)}:${line}:${column})`,
        );
      },
    },
  });
  const k = instance.exports as unknown as KernelExports;
  checkModuleLayout(k, opts.layout ?? HOST_MODULE_LAYOUT);

  const view = new Uint8Array(memory.buffer);
  const end = view.byteLength;

  function range(what: string, ptr: number, len: number): void {
    if (!Number.isInteger(ptr) || !Number.isInteger(len) || len < 0 || ptr < KERNEL_HEAP_START || ptr + len > end) {
      throw boundary(
        `${what}: [${ptr}, ${ptr}+${len}) must be integers within [${KERNEL_HEAP_START}, ${end}) of kernel memory`,
      );
    }
  }
  function count(what: string, n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw boundary(`${what}: bad count ${n}`);
  }
  function blockSizeOk(what: string, blockSize: number): void {
    if (!isValidBlockSize(blockSize)) {
      throw boundary(`${what}: block size ${blockSize} is not a power of two in [512, 65536]`);
    }
  }
  function modeOk(what: string, xorMode: number): void {
    if (xorMode !== 0 && xorMode !== 1) throw boundary(`${what}: xorMode must be 0 or 1, got ${xorMode}`);
  }
  function disjoint(what: string, p: number, plen: number, q: number, qlen: number): void {
    if (p < q + qlen && q < p + plen) throw boundary(`${what}: regions at ${p} and ${q} overlap`);
  }
  function sameOrDisjoint(what: string, p: number, q: number, len: number): void {
    if (p !== q) disjoint(what, p, len, q, len);
  }

  return {
    memory,
    variant,
    bytes: () => view,
    xor(dst, a, b, len) {
      range('xor dst', dst, len);
      range('xor a', a, len);
      range('xor b', b, len);
      sameOrDisjoint('xor dst/a', dst, a, len);
      sameOrDisjoint('xor dst/b', dst, b, len);
      k.xor(dst, a, b, len);
    },
    coalesce(table, n) {
      count('coalesce', n);
      range('coalesce table', table, FRAGMENT_BYTES * n);
      k.coalesce(table, n);
    },
    zeroRunEncode(src, blockCount, blockSize, out, offsets) {
      blockSizeOk('zeroRunEncode', blockSize);
      count('zeroRunEncode', blockCount);
      const outMax = blockCount * encodedBlockBytesMax(blockSize);
      range('zeroRunEncode src', src, blockCount * blockSize);
      range('zeroRunEncode out', out, outMax);
      range('zeroRunEncode offsets', offsets, OFFSET_BYTES * (blockCount + 1));
      disjoint('zeroRunEncode src/out', src, blockCount * blockSize, out, outMax);
      disjoint('zeroRunEncode offsets/out', offsets, OFFSET_BYTES * (blockCount + 1), out, outMax);
      return k.zeroRunEncode(src, blockCount, blockSize, out, offsets) >>> 0;
    },
    deltaEncode(a, b, blockCount, blockSize, out, offsets) {
      blockSizeOk('deltaEncode', blockSize);
      count('deltaEncode', blockCount);
      const outMax = blockCount * encodedBlockBytesMax(blockSize);
      range('deltaEncode a', a, blockCount * blockSize);
      range('deltaEncode b', b, blockCount * blockSize);
      range('deltaEncode out', out, outMax);
      range('deltaEncode offsets', offsets, OFFSET_BYTES * (blockCount + 1));
      disjoint('deltaEncode a/out', a, blockCount * blockSize, out, outMax);
      disjoint('deltaEncode b/out', b, blockCount * blockSize, out, outMax);
      disjoint('deltaEncode offsets/out', offsets, OFFSET_BYTES * (blockCount + 1), out, outMax);
      return k.deltaEncode(a, b, blockCount, blockSize, out, offsets) >>> 0;
    },
    zeroRunDecode(enc, encLen, dst, blockSize, xorMode) {
      blockSizeOk('zeroRunDecode', blockSize);
      modeOk('zeroRunDecode', xorMode);
      range('zeroRunDecode enc', enc, encLen);
      range('zeroRunDecode dst', dst, blockSize);
      disjoint('zeroRunDecode enc/dst', enc, encLen, dst, blockSize);
      return k.zeroRunDecode(enc, encLen, dst, blockSize, xorMode);
    },
    zeroRunDecodeBlocks(enc, offsets, blockCount, dst, blockSize, xorMode, encLen = end - enc) {
      blockSizeOk('zeroRunDecodeBlocks', blockSize);
      modeOk('zeroRunDecodeBlocks', xorMode);
      count('zeroRunDecodeBlocks', blockCount);
      range('zeroRunDecodeBlocks enc', enc, encLen);
      range('zeroRunDecodeBlocks offsets', offsets, OFFSET_BYTES * (blockCount + 1));
      range('zeroRunDecodeBlocks dst', dst, blockCount * blockSize);
      if (encLen !== end - enc) disjoint('zeroRunDecodeBlocks enc/dst', enc, encLen, dst, blockCount * blockSize);
      return k.zeroRunDecodeBlocks(enc, offsets, blockCount, dst, blockSize, xorMode, encLen);
    },
    crc32c(ptr, len, seed = 0) {
      range('crc32c', ptr, len);
      return k.crc32c(ptr, len, seed >>> 0) >>> 0;
    },
  };
}
