// The increment builder: turns one closed window into a pack. For every volume it finds the changed
// blocks, reads their old contents from the replica (which stands at the end of the previous
// window), hands chunks of blocks to the kernel pool to coalesce the window's writes into new
// blocks, XOR-encode the backward increment and zero-run-encode the forward one, and writes the
// sections to a temporary pack that is synced and renamed into place.
import { putU64 } from '../encoding/fields.js';
import { assert, corrupt } from '../errors.js';
import type { JournalReader, RecordRef } from '../journal/reader.js';
import { RECORD_HEADER_BYTES } from '../journal/record.js';
import type { Storage } from '../storage/storage.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { BLOCK_NUMBER_BYTES, sectionLayout } from './block-encoding.js';
import { Jobs } from './jobs.js';
import { PackWriter, type BuiltPack } from './pack-writer.js';
import { forEachRun, SYNC_IO_BYTES_MAX } from './sections.js';
import type { KernelPool, Slot } from './pool.js';
import type { BuildResult } from './tasks.js';
import { readAsync } from '../storage/storage.js';
import { lowerBound } from '../sorted.js';
import type { ClosedWindow } from '../window/closed-window.js';
import { FRAGMENT_BYTES, RECORD_ENTRY_BYTES } from '../kernels/layout.js';

export interface BuilderContext {
  storage: Storage;
  dir: string;
  blockSize: number;
  volumes: VolumeSet;
  journal: JournalReader;
  pool: KernelPool;
}

export type { BuiltPack };

export async function buildPack(ctx: BuilderContext, w: ClosedWindow): Promise<BuiltPack> {
  const { pool, blockSize: B } = ctx;
  assert(w.records.length > 0 && w.records[0].seq === w.firstSeq && w.records[w.records.length - 1].seq === w.lastSeq, `window ${w.id} holds seqs ${w.firstSeq}..${w.lastSeq}`);
  const src = await loadWindowRecords(ctx, w);

  const pack = new PackWriter(ctx.storage, ctx.dir, w.firstSeq, w.lastSeq);
  try {
    const jobs = new Jobs();
    for (const volume of ctx.volumes.volumes) {
      const recs = w.records.filter((r) => r.volume === volume.index);
      if (recs.length === 0) continue;
      const blocks = changedBlocks(recs, B);
      const M = pool.slots[0].blocksMax;
      const chunkCount = Math.ceil(blocks.length / M);
      const frags: number[][] = Array.from({ length: chunkCount }, () => []);
      for (let r = 0; r < recs.length; r++) {
        const rec = recs[r];
        const b0 = Math.floor(rec.offset / B);
        const g0 = lowerIndex(blocks, b0);
        const g1 = g0 + Math.floor((rec.offset + rec.length - 1) / B) - b0;
        for (let c = Math.floor(g0 / M); c <= Math.floor(g1 / M); c++) frags[c].push(r);
      }
      for (let c = 0; c < chunkCount; c++) {
        const chunkBlocks = blocks.slice(c * M, (c + 1) * M);
        const slot = await pool.acquire();
        const job = buildChunk(ctx, slot, volume.index, chunkBlocks, c * M, blocks, frags[c].map((r) => recs[r]), src, w.firstSeq)
          .then((res) => pack.addSection(volume.index, chunkBlocks, res, pool.buffer(slot.out, slot.outBytes)))
          .finally(() => pool.release(slot));
        jobs.add(job);
      }
    }
    await jobs.settle();
    return await pack.finish({ t1: w.t1, t2: w.t2, blockSize: B, writes: w.records.length, bytesWritten: w.bytes });
  } catch (err) {
    pack.abort();
    throw err;
  }
}

/** Pointer to each record's payload in the journal region, by seq - firstSeq. */
type PayloadMap = Uint32Array;

/**
 * Reads the window's records (contiguous per journal segment) into the pool's journal region, then
 * has the workers check every payload against its CRC32C, so the event loop only issues reads.
 */
async function loadWindowRecords(ctx: BuilderContext, w: ClosedWindow): Promise<PayloadMap> {
  const { pool } = ctx;
  const region = pool.journalRegion;
  const mem = pool.bytes();
  const map: PayloadMap = new Uint32Array(w.records.length);
  const table = pool.recordTable;
  assert(w.records.length <= table.entries, `window ${w.id} has at most ${table.entries} writes`);
  const view = new DataView(pool.memory.buffer as ArrayBuffer, table.ptr, w.records.length * RECORD_ENTRY_BYTES);
  let cursor = 0;
  let i = 0;
  while (i < w.records.length) {
    let j = i;
    while (j + 1 < w.records.length && w.records[j + 1].segment === w.records[i].segment) j++;
    const first = w.records[i];
    const last = w.records[j];
    const start = first.position;
    const end = last.position + RECORD_HEADER_BYTES + last.length;
    assert(cursor + end - start <= region.bytes, `window ${w.id} fits the journal region (${cursor} + ${end - start} bytes of records ${first.seq}..${last.seq} in segment ${first.segment}, region ${region.bytes})`);
    // A handle of its own: the reader's cached ones are for synchronous reads and may be closed meanwhile.
    const f = ctx.journal.openSegment(first.segment);
    let n: number;
    try {
      n = await readAsync(f, mem, start, region.ptr + cursor, end - start);
    } finally {
      f.close();
    }
    if (n !== end - start) throw corrupt(ctx.journal.pathOf(first.segment), start, `window ${w.id} records are cut short`);
    for (let k = i; k <= j; k++) {
      const r = w.records[k];
      const ptr = region.ptr + cursor + (r.position - start) + RECORD_HEADER_BYTES;
      map[k] = ptr;
      view.setUint32(RECORD_ENTRY_BYTES * k, ptr, true);
      view.setUint32(RECORD_ENTRY_BYTES * k + 4, r.length, true);
      view.setUint32(RECORD_ENTRY_BYTES * k + 8, r.payloadCrc, true);
    }
    cursor += end - start;
    i = j + 1;
  }
  const batch = Math.ceil(w.records.length / pool.threads);
  const checks: Promise<number>[] = [];
  for (let from = 0; from < w.records.length; from += batch) {
    checks.push(pool.run({ kind: 'verify', table: table.ptr, from, count: Math.min(batch, w.records.length - from) }) as Promise<number>);
  }
  for (const bad of await Promise.all(checks)) {
    if (bad >= 0) {
      const r = w.records[bad];
      throw corrupt(ctx.journal.pathOf(r.segment), r.position, `payload of seq ${r.seq} does not match its checksum`);
    }
  }
  return map;
}

/** Sorted, distinct block numbers touched by the records. */
export function changedBlocks(recs: RecordRef[], B: number): number[] {
  let count = 0;
  for (const r of recs) count += Math.floor((r.offset + r.length - 1) / B) - Math.floor(r.offset / B) + 1;
  const all = new Float64Array(count);
  let n = 0;
  for (const r of recs) {
    const last = Math.floor((r.offset + r.length - 1) / B);
    for (let b = Math.floor(r.offset / B); b <= last; b++) all[n++] = b;
  }
  all.sort();
  const out: number[] = [];
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) out.push(all[i]);
  return out;
}

/** Index of `block` in the sorted array (it must be there). */
function lowerIndex(sorted: number[], block: number): number {
  const lo = lowerBound(sorted, (b) => b >= block);
  assert(sorted[lo] === block, `block ${block} is among the changed blocks`);
  return lo;
}

async function buildChunk(
  ctx: BuilderContext, slot: Slot, volume: number, chunkBlocks: number[], chunkStart: number,
  allBlocks: number[], recs: RecordRef[], src: PayloadMap, firstSeq: number,
): Promise<BuildResult> {
  const { pool, blockSize: B } = ctx;
  const n = chunkBlocks.length;
  const mem = pool.bytes();
  const replica = ctx.volumes.byIndex(volume).replica;
  // Old contents, from the replica as it stands after the previous window, read off the event loop
  // where possible. Otherwise small runs are read at once (a page-cache copy costs less than a trip
  // to the I/O pool) and big ones go to the I/O pool.
  // A plain file is read by a worker, every run in one task; otherwise here.
  const fd = replica.osFd;
  if (fd !== undefined) {
    const runs: number[] = [];
    forEachRun(chunkBlocks, (i, block, count) => runs.push(block * B, slot.oldBlocks + i * B, count * B));
    await pool.readRuns(fd, runs);
  } else {
    const reads: Promise<void>[] = [];
    forEachRun(chunkBlocks, (i, block, count) => {
      const dst = slot.oldBlocks + i * B;
      const fill = (got: number) => {
        if (got !== count * B) mem.fill(0, dst + got, dst + count * B);
      };
      if (count * B <= SYNC_IO_BYTES_MAX) fill(replica.read(mem, block * B, dst, count * B));
      else reads.push(readAsync(replica, mem, block * B, dst, count * B).then(fill));
    });
    await Promise.all(reads);
  }
  // Fragment table: new = old, then every write clipped to this chunk, in sequence order.
  const table = pool.buffer(slot.table, slot.tableEntries * FRAGMENT_BYTES);
  let count = 0;
  const push = (dst: number, from: number, len: number) => {
    table.writeUInt32LE(dst, count * FRAGMENT_BYTES);
    table.writeUInt32LE(from, count * FRAGMENT_BYTES + 4);
    table.writeUInt32LE(len, count * FRAGMENT_BYTES + 8);
    count++;
  };
  push(slot.newBlocks, slot.oldBlocks, n * B);
  for (const r of recs) {
    const g0 = lowerIndex(allBlocks, Math.floor(r.offset / B));
    // Blocks of one write are consecutive among the changed blocks: map the write's byte range into the chunk.
    const startIndex = Math.max(g0, chunkStart);
    const endIndex = Math.min(g0 + Math.floor((r.offset + r.length - 1) / B) - Math.floor(r.offset / B), chunkStart + n - 1);
    const byteFrom = Math.max(r.offset, allBlocks[startIndex] * B);
    const byteTo = Math.min(r.offset + r.length, (allBlocks[endIndex] + 1) * B);
    if (byteTo <= byteFrom) continue;
    const dst = slot.newBlocks + (startIndex - chunkStart) * B + (byteFrom - allBlocks[startIndex] * B);
    push(dst, src[r.seq - firstSeq] + (byteFrom - r.offset), byteTo - byteFrom);
    if (count === slot.tableEntries) {
      await pool.run({ kind: 'coalesce', table: slot.table, count });
      count = 0;
    }
  }
  // Block numbers lead the section body (the worker writes the rest).
  const body = pool.buffer(slot.out, sectionLayout(n, 0, 0).fwdOffsets);
  for (let i = 0; i < n; i++) putU64(body, BLOCK_NUMBER_BYTES * i, chunkBlocks[i]);
  return (await pool.run({ kind: 'build', table: slot.table, count, blockCount: n, blockSize: B, oldBlocks: slot.oldBlocks, newBlocks: slot.newBlocks, out: slot.out, scratch: slot.scratch })) as BuildResult;
}
