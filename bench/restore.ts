// Restore and time travel:
// 1. Restore throughput (GB/s) of a volume filled with data, to points 1, 10, 100 and 1000 windows
//    back, against `cp` of the replica file and a sequential read of it (the disk-speed reference).
//    The volume is an existing file of random bytes (its contents become the start of the history);
//    each window then holds 16 random 4 KiB writes, so the history stays small on disk.
// 2. Time to open a `<vol>@seq=` view (store.history.view(vol, seq)) and read its first block, on
//    sparse volumes of 64 MiB to 4 GiB with the same history (windows of 16 random 4 KiB writes),
//    at a point half-way back: cold (first open) and warm (median of later opens).
//
// Run alone: npm run build && node dist/bench/restore.js [--quick] [--backs 1,1000] [--rounds N] [--no-views]

import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initStore, Store } from '../src/index.js';
import { isMain } from './main-module.js';
import { fixed } from './format.js';
import { prng } from '../src/prng.js';

export interface RestoreRow {
  windowsBack: number;
  /** Which pass over `backs` (0 unless --rounds asks for more). */
  round: number;
  seq: number;
  seconds: number;
  GBps: number;
  /** Restore speed over the cp speed of the replica. */
  vsCp: number;
  /** From the call to the first chunk written (opening the view: the packs it needs). */
  firstChunkSeconds: number;
  /** From the last chunk written to the end (the fsync of the output). */
  syncSeconds: number;
}

export interface DiskReference {
  volumeBytes: number;
  cpGBps: number;
  readGBps: number;
}

export interface ViewOpenRow {
  volumeBytes: number;
  windows: number;
  coldMs: number;
  warmMs: number;
}

export interface RestoreBenchResult {
  reference: DiskReference;
  restore: RestoreRow[];
  viewOpen: ViewOpenRow[];
}

const WRITES_PER_WINDOW = 16;
const WRITE_BYTES = 4096;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Writes `windows` windows of small random writes; returns the last seq of each window. */
async function buildHistory(store: Store, volume: string, size: number, windows: number, seed: number): Promise<number[]> {
  const rand = prng(seed);
  const data = Buffer.allocUnsafe(WRITE_BYTES);
  const ends: number[] = [];
  for (let w = 0; w < windows; w++) {
    for (let k = 0; k < WRITES_PER_WINDOW; k++) {
      for (let i = 0; i < WRITE_BYTES; i += 4) data.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
      await store.write(volume, Math.floor(rand() * (size / WRITE_BYTES)) * WRITE_BYTES, data);
    }
    store.markWindow();
    ends.push(store.lastSeq);
    if (w % 50 === 49) await store.drain();
  }
  await store.settle();
  return ends;
}

function fillRandom(path: string, size: number): void {
  const rand = prng(7);
  const buf = Buffer.allocUnsafe(8 * 2 ** 20);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
  const fd = openSync(path, 'w');
  for (let at = 0; at < size; at += buf.length) {
    buf.writeUInt32LE(at / buf.length, 0); // chunks differ
    writeSync(fd, buf, 0, Math.min(buf.length, size - at), at);
  }
  closeSync(fd);
}

function readAll(path: string): number {
  const buf = Buffer.allocUnsafe(8 * 2 ** 20);
  const fd = openSync(path, 'r');
  let total = 0;
  const t = performance.now();
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n <= 0) break;
    total += n;
  }
  closeSync(fd);
  return total / ((performance.now() - t) / 1000) / 1e9;
}

async function benchRestores(dir: string, volumeBytes: number, backs: number[], rounds: number): Promise<{ reference: DiskReference; restore: RestoreRow[] }> {
  const prod = join(dir, 'prod.img');
  fillRandom(prod, volumeBytes);
  await initStore(join(dir, 'store'), { volumes: [{ name: 'vol', path: prod, size: volumeBytes }], window: 'marker' });
  const store = await Store.open(join(dir, 'store'));
  try {
    const windows = Math.max(...backs) + 1;
    const ends = await buildHistory(store, 'vol', volumeBytes, windows, 11);
    const replica = join(dir, 'store', 'replica', 'vol');
    // Disk-speed reference: cp of the replica then fsync of the copy (a restore syncs its output too;
    // same page-cache state as the restores), and a plain sequential read.
    const out = join(dir, 'out.img');
    readAll(replica); // warm, as the restores find it
    execFileSync('sync'); // no dirty pages of the history build left for the fsync below to pay for
    let t = performance.now();
    execFileSync('cp', ['--sparse=never', replica, out]);
    const copyFd = openSync(out, 'r+');
    fsyncSync(copyFd);
    closeSync(copyFd);
    const cpGBps = volumeBytes / ((performance.now() - t) / 1000) / 1e9;
    rmSync(out, { force: true });
    const readGBps = readAll(replica);
    const restore: RestoreRow[] = [];
    // One restore first, not counted (code and pack cache warm, as for the rest).
    await store.history.restore('vol', { seq: ends[ends.length - 1] }, out);
    rmSync(out, { force: true });
    for (let round = 0; round < rounds; round++) for (const back of backs) {
      const seq = ends[ends.length - 1 - back];
      execFileSync('sync');
      t = performance.now();
      let first = 0;
      let last = 0;
      await store.history.restore('vol', { seq }, out, () => {
        last = performance.now();
        if (first === 0) first = last;
      });
      const end = performance.now();
      const seconds = (end - t) / 1000;
      if (statSync(out).size !== volumeBytes) throw new Error('restore wrote the wrong size');
      rmSync(out, { force: true });
      const GBps = volumeBytes / seconds / 1e9;
      restore.push({ windowsBack: back, round, seq, seconds, GBps, vsCp: GBps / cpGBps, firstChunkSeconds: (first - t) / 1000, syncSeconds: (end - last) / 1000 });
    }
    return { reference: { volumeBytes, cpGBps, readGBps }, restore };
  } finally {
    await store.close();
  }
}

async function benchViewOpen(dir: string, sizes: number[], windows: number): Promise<ViewOpenRow[]> {
  const rows: ViewOpenRow[] = [];
  for (const size of sizes) {
    const sdir = join(dir, `view-${size}`);
    await initStore(sdir, { volumes: [{ name: 'vol', size }], window: 'marker' });
    const store = await Store.open(sdir);
    try {
      const ends = await buildHistory(store, 'vol', size, windows, 23);
      const seq = ends[Math.floor(ends.length / 2)] - 3; // inside a window: journal writes replayed too
      const open = () => {
        const t = performance.now();
        const view = store.history.view('vol', seq);
        view.read(0, 4096);
        return performance.now() - t;
      };
      const coldMs = open();
      const warm: number[] = [];
      for (let i = 0; i < 15; i++) warm.push(open());
      rows.push({ volumeBytes: size, windows, coldMs, warmMs: median(warm) });
    } finally {
      await store.close();
      rmSync(sdir, { recursive: true, force: true });
    }
  }
  return rows;
}

export interface RestoreBenchOptions {
  quick?: boolean;
  /** Windows back to restore to (default 1, 10, 100, 1000; quick: 1, 10, 100). */
  backs?: number[];
  /** Passes over `backs` (the page cache and pack cache stay warm after the first). */
  rounds?: number;
  /** Skip the view-open part. */
  noViews?: boolean;
}

export async function benchRestore(opts: RestoreBenchOptions = {}): Promise<RestoreBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-restore-'));
  try {
    const volumeBytes = opts.quick ? 256 * 2 ** 20 : 2 ** 30;
    const backs = opts.backs ?? (opts.quick ? [1, 10, 100] : [1, 10, 100, 1000]);
    const { reference, restore } = await benchRestores(dir, volumeBytes, backs, opts.rounds ?? 1);
    rmSync(join(dir, 'store'), { recursive: true, force: true });
    rmSync(join(dir, 'prod.img'), { force: true });
    if (opts.noViews) return { reference, restore, viewOpen: [] };
    const sizes = opts.quick ? [64, 1024].map((m) => m * 2 ** 20) : [64, 256, 1024, 4096].map((m) => m * 2 ** 20);
    const viewOpen = await benchViewOpen(dir, sizes, opts.quick ? 50 : 200);
    return { reference, restore, viewOpen };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printRestore(r: RestoreBenchResult): void {
  const f = (n: number | null, digits = 2) => fixed(n, digits);
  console.log(`volume ${r.reference.volumeBytes / 2 ** 20} MiB; disk reference: cp + fsync of the replica ${f(r.reference.cpGBps)} GB/s, sequential read ${f(r.reference.readGBps)} GB/s`);
  console.table(r.restore.map((x) => ({ 'windows back': x.windowsBack, round: x.round, seq: x.seq, seconds: f(x.seconds), 'open+1st chunk s': f(x.firstChunkSeconds, 3), 'fsync s': f(x.syncSeconds), 'GB/s': f(x.GBps), 'vs cp': f(x.vsCp) })));
  if (r.viewOpen.length > 0) console.table(r.viewOpen.map((x) => ({ volume: `${x.volumeBytes / 2 ** 20} MiB`, windows: x.windows, 'open+first block cold ms': f(x.coldMs), 'warm ms': f(x.warmMs) })));
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  printRestore(await benchRestore({
    quick: process.argv.includes('--quick'),
    backs: arg('--backs')?.split(',').map(Number),
    rounds: arg('--rounds') ? Number(arg('--rounds')) : undefined,
    noViews: process.argv.includes('--no-views'),
  }));
}
