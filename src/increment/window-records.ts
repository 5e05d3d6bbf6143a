// A window's journal records in the kernel pool's journal region: read once (contiguous per journal
// segment), every payload checked against its CRC32C by the workers. The pack builder coalesces them
// into new blocks to checksum them, and the replica apply replays them over the old blocks the pack
// holds: the journal is the window's forward increment.
import { assert, corrupt } from '../errors.js';
import type { JournalReader, RecordRef } from '../journal/reader.js';
import { RECORD_HEADER_BYTES } from '../journal/record.js';
import { readAsync } from '../storage/storage.js';
import { lowerBound } from '../sorted.js';
import { RECORD_ENTRY_BYTES } from '../kernels/layout.js';
import type { KernelPool } from './pool.js';

/** The writes of one window (seqs firstSeq..lastSeq, in order). */
export interface WindowWrites {
  id: number;
  firstSeq: number;
  lastSeq: number;
  records: RecordRef[];
}

/** A window's records loaded into the journal region: `payload[seq - firstSeq]` points at each payload. */
export interface LoadedWindow {
  window: WindowWrites;
  payload: Uint32Array;
  /** Per volume index, its writes (volumeWritesOf). */
  volumes: Map<number, VolumeWrites>;
}

export async function loadWindowRecords(pool: KernelPool, journal: JournalReader, w: WindowWrites): Promise<LoadedWindow> {
  assert(w.records.length > 0 && w.records[0].seq === w.firstSeq && w.records[w.records.length - 1].seq === w.lastSeq, `window ${w.id} holds seqs ${w.firstSeq}..${w.lastSeq}`);
  const region = pool.journalRegion;
  const mem = pool.bytes();
  const payload = new Uint32Array(w.records.length);
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
    const f = journal.openSegment(first.segment);
    let n: number;
    try {
      n = await readAsync(f, mem, start, region.ptr + cursor, end - start);
    } finally {
      f.close();
    }
    if (n !== end - start) throw corrupt(journal.pathOf(first.segment), start, `window ${w.id} records are cut short`);
    for (let k = i; k <= j; k++) {
      const r = w.records[k];
      const ptr = region.ptr + cursor + (r.position - start) + RECORD_HEADER_BYTES;
      payload[k] = ptr;
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
      throw corrupt(journal.pathOf(r.segment), r.position, `payload of seq ${r.seq} does not match its checksum`);
    }
  }
  return { window: w, payload, volumes: new Map() };
}

/** Sorted, distinct block numbers touched by the records. */
export function changedBlocks(recs: readonly RecordRef[], B: number): number[] {
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
export function indexOfBlock(sorted: readonly number[], block: number): number {
  const lo = lowerBound(sorted as number[], (b) => b >= block);
  assert(sorted[lo] === block, `block ${block} is among the changed blocks`);
  return lo;
}

/** Write indices are packed below this in VolumeWrites' sort keys (far above windowWritesMax). */
const WRITE_INDEX_LIMIT = 2 ** 21;

/**
 * One volume's writes in a window, with where they fall among its changed blocks: the writes of a
 * chunk of consecutive changed blocks (a section) are found without scanning all of them.
 */
export class VolumeWrites {
  readonly blocks: number[];
  /** For write k of `records`: the index among `blocks` of its first and of its last block. */
  private readonly first: Uint32Array;
  private readonly last: Uint32Array;
  /** Write indices ordered by `first`, and the most changed blocks one write spans less one. */
  private readonly byFirst: Uint32Array;
  private readonly spanMax: number;

  constructor(readonly records: RecordRef[], readonly blockSize: number) {
    const B = blockSize;
    this.blocks = changedBlocks(records, B);
    const n = records.length;
    assert(n < WRITE_INDEX_LIMIT, `a window holds fewer than ${WRITE_INDEX_LIMIT} writes of one volume (${n})`);
    this.first = new Uint32Array(n);
    this.last = new Uint32Array(n);
    let spanMax = 0;
    for (let k = 0; k < n; k++) {
      const r = records[k];
      const g0 = indexOfBlock(this.blocks, Math.floor(r.offset / B));
      const span = Math.floor((r.offset + r.length - 1) / B) - Math.floor(r.offset / B);
      this.first[k] = g0;
      // The blocks of one write are consecutive among the changed blocks.
      this.last[k] = g0 + span;
      if (span > spanMax) spanMax = span;
    }
    this.spanMax = spanMax;
    // Sorted by (first, k) as one number: first < 2^32 and k < 2^21 keep it exact.
    const keys = new Float64Array(n);
    for (let k = 0; k < n; k++) keys[k] = this.first[k] * WRITE_INDEX_LIMIT + k;
    keys.sort();
    this.byFirst = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.byFirst[i] = keys[i] % WRITE_INDEX_LIMIT;
  }

  /** Indices into `records`, ascending (seq order), of the writes touching changed blocks [from, to]. */
  touching(from: number, to: number): Uint32Array {
    const { first, last, byFirst } = this;
    // Only a write starting at most spanMax blocks before `from` can reach it.
    const lo = lowerBound(byFirst, (k) => first[k] + this.spanMax >= from);
    const out: number[] = [];
    for (let i = lo; i < byFirst.length && first[byFirst[i]] <= to; i++) {
      const k = byFirst[i];
      if (last[k] >= from) out.push(k);
    }
    return Uint32Array.from(out).sort();
  }

  /** Index among `blocks` of write k's first block. */
  firstIndex(k: number): number {
    return this.first[k];
  }

  /** Index among `blocks` of write k's last block. */
  lastIndex(k: number): number {
    return this.last[k];
  }
}

/** A window's writes per volume, built once and shared by the pack builder and the replica apply. */
export function volumeWritesOf(loaded: LoadedWindow, volume: number, blockSize: number): VolumeWrites {
  let v = loaded.volumes.get(volume);
  if (v === undefined || v.blockSize !== blockSize) {
    v = new VolumeWrites(loaded.window.records.filter((r) => r.volume === volume), blockSize);
    loaded.volumes.set(volume, v);
  }
  return v;
}
