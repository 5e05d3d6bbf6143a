// The kernels' shared WebAssembly.Memory, declared once: where the module's own data ends, where
// the kernel pool's arena puts each region, and the sub-layout a build task works in. Pure numbers
// and functions of the pool's shape; the pool, its workers, the builder and the replica apply take
// every offset from here. The WebAssembly module exports the constants it compiled with, and the
// loader (kernels.ts, checkModuleLayout) refuses a module that disagrees.
//
// kernel memory (byte offsets; the memory never grows)
//   0                  module static data: CRC-32C tables, abort strings, up to the module's __heap_base
//   KERNEL_HEAP_START  65536: the first byte the host owns; kernels never touch anything below it
// the kernel pool's arena, from KERNEL_HEAP_START (every region starts ARENA_ALIGN-aligned)
//   journal region   windowBytesMax + windowWritesMax * RECORD_HEADER_BYTES: a window's records as
//                    read from the journal (headers included)
//   record table     windowWritesMax entries of RECORD_ENTRY_BYTES: u32 payload ptr, u32 length,
//                    u32 CRC32C, one per record of the window (the verify task reads it)
//   SLOTS_PER_THREAD * threads slots, each one chunk of changed blocks (blocksMax =
//   chunkBytes / blockSize blocks, at least one):
//     +0                      old blocks      blocksMax * blockSize
//     +chunk                  new blocks      blocksMax * blockSize
//     +2 chunk                fragment table  FRAGMENTS_PER_SLOT entries of FRAGMENT_BYTES: u32 dst,
//                                             u32 src, u32 len, applied in order (coalesce)
//     +2 chunk + table        out             one section body (below), worst case for blocksMax blocks
//                                             in either pack format (a format 1 pack is read back
//                                             here when recovery redoes its window)
// section body in a slot's out (the pack's format, src/increment/block-encoding.ts sectionLayout), for n blocks
//   +0                        n u64 block numbers (the builder writes them)
//   +8n                       n+1 u32 forward table (format 2: new-block CRC32Cs; format 1: offsets)
//   +8n + 4(n+1)              n+1 u32 backward offsets
//   +8n + 8(n+1)              forward encodings, then backward encodings (the build task writes them)
import { RECORD_HEADER_BYTES } from '../journal/record.js';
import { sectionLayout } from '../increment/block-encoding.js';
import { CHUNK_BYTES, encodedBlockBytesMax, TOKEN_HEADER_BYTES } from './format.js';

/** First byte callers may use; the module's static data lies below. */
export const KERNEL_HEAP_START = 65536;
export const MEMORY_PAGE_BYTES = 65536;
/** wasm32: 4 GiB, the maximum the module declares (asconfig.json maximumMemory). */
export const MEMORY_PAGES_MAX = 65536;

/** A coalesce fragment: u32 dst, u32 src, u32 len. */
export const FRAGMENT_BYTES = 12;
/** A record table entry: u32 payload ptr, u32 payload length, u32 payload CRC32C. */
export const RECORD_ENTRY_BYTES = 12;
/** Fragments one coalesce task applies at most; the builder flushes a full table and goes on. */
export const FRAGMENTS_PER_SLOT = 8192;
/** Two slots a thread: one being filled by the scheduler while the other is worked on. */
export const SLOTS_PER_THREAD = 2;
/** Regions start on a cache line. */
export const ARENA_ALIGN = 64;

/**
 * The constants the WebAssembly module compiles in (assembly/kernels.ts exports them as globals),
 * which the host must agree with.
 */
export interface ModuleLayout {
  /** The module refuses fragments below it. */
  heapStart: number;
  fragmentBytes: number;
  chunkBytes: number;
  tokenHeaderBytes: number;
}

/** What the host declares; the loader checks the module against it. */
export const HOST_MODULE_LAYOUT: Readonly<ModuleLayout> = {
  heapStart: KERNEL_HEAP_START,
  fragmentBytes: FRAGMENT_BYTES,
  chunkBytes: CHUNK_BYTES,
  tokenHeaderBytes: TOKEN_HEADER_BYTES,
};

export const alignArena = (n: number) => Math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN;

/**
 * The largest section body of `blockCount` blocks in either format: a format 1 section, with both
 * increments at their worst plus the block of slack its build needed (it encoded a block's backward
 * delta before it knew the raw old block was smaller). A format 2 section (backward only) is smaller.
 */
export function sectionBodyBytesMax(blockCount: number, blockSize: number): number {
  return sectionLayout(blockCount, 0, 0).fwdData + (2 * blockCount + 1) * encodedBlockBytesMax(blockSize);
}

/** What the arena is sized for. */
export interface ArenaShape {
  threads: number;
  blockSize: number;
  chunkBytes: number;
  windowBytesMax: number;
  windowWritesMax: number;
}

/** One slot: a chunk of changed blocks and what the build task makes of them. */
export interface Slot {
  id: number;
  /** Blocks a slot holds at most. */
  blocksMax: number;
  oldBlocks: number;
  newBlocks: number;
  /** Fragment table, tableEntries entries of FRAGMENT_BYTES. */
  table: number;
  tableEntries: number;
  /** The section body. */
  out: number;
  outBytes: number;
}

export interface ArenaLayout {
  journalRegion: { ptr: number; bytes: number };
  recordTable: { ptr: number; entries: number };
  slots: Slot[];
  /** The memory the arena needs, from byte 0. */
  totalBytes: number;
}

export function arenaLayout(shape: ArenaShape): ArenaLayout {
  const blocksMax = Math.max(1, Math.floor(shape.chunkBytes / shape.blockSize));
  const chunk = blocksMax * shape.blockSize;
  const tableBytes = alignArena(FRAGMENT_BYTES * FRAGMENTS_PER_SLOT);
  const outBytes = alignArena(sectionBodyBytesMax(blocksMax, shape.blockSize));
  const slotBytes = 2 * chunk + tableBytes + outBytes;
  const journalBytes = alignArena(shape.windowBytesMax + shape.windowWritesMax * RECORD_HEADER_BYTES);
  const recordTableBytes = alignArena(RECORD_ENTRY_BYTES * shape.windowWritesMax);

  const journalRegion = { ptr: KERNEL_HEAP_START, bytes: journalBytes };
  const recordTable = { ptr: journalRegion.ptr + journalBytes, entries: shape.windowWritesMax };
  const slots: Slot[] = [];
  let at = recordTable.ptr + recordTableBytes;
  for (let id = 0; id < SLOTS_PER_THREAD * shape.threads; id++) {
    const table = at + 2 * chunk;
    slots.push({
      id, blocksMax,
      oldBlocks: at, newBlocks: at + chunk,
      table, tableEntries: FRAGMENTS_PER_SLOT,
      out: table + tableBytes, outBytes,
    });
    at += slotBytes;
  }
  return { journalRegion, recordTable, slots, totalBytes: at };
}
