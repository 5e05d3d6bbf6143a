// Clones against volume size: `rewind clone create` followed by the first read of the clone, on
// sparse volumes of 64 MiB to 16 GiB holding the same history (bench/sparse-history.ts). A clone
// copies nothing, so both should take the same time whatever the size.
// - create: what `rewind clone create` does in its own process: open the store as a reader, resolve
//   and lease the point, write the empty overlay, map and record, close.
// - first read: what `rewind serve` does when a client connects to the clone and reads block 0: open
//   the clone (its view of the point: the packs after it, its overlay) and read 4 KiB.
// Cold is the first clone of the store; warm the median of the next ones (the packs are cached).
//
// Run alone: npm run build && node dist/bench/clone.js [--quick]
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openStoreReader } from '../src/index.js';
import { createClone } from '../src/clones/clones.js';
import { fixed } from './format.js';
import { isMain } from './main-module.js';
import { median, sizeLabel, storeWithChanges, WRITE_BYTES, benchSizes, perVolumeSize } from './sparse-history.js';

export interface CloneRow {
  volumeBytes: number;
  windows: number;
  /** The clone's point: inside a window half-way back (journal writes are replayed too). */
  seq: number;
  coldCreateMs: number;
  coldFirstReadMs: number;
  warmCreateMs: number;
  warmFirstReadMs: number;
}

const WARM_CLONES = 9;

async function one(root: string, volumeBytes: number, windows: number): Promise<CloneRow> {
  const dir = join(root, `store-${volumeBytes}`);
  const { store, ends } = await storeWithChanges(dir, volumeBytes, windows);
  try {
    const seq = ends[Math.floor(ends.length / 2)] - 3;
    const block = Buffer.allocUnsafe(WRITE_BYTES);
    const cloneOnce = async (name: string) => {
      const t0 = performance.now();
      const reader = await openStoreReader(dir);
      try {
        await createClone({ dir, history: reader.history }, name, 'v', { seq });
      } finally {
        reader.close();
      }
      const t1 = performance.now();
      const handle = await store.clones.acquire(name);
      try {
        handle.clone.read(0, WRITE_BYTES, block);
      } finally {
        await handle.close();
      }
      const t2 = performance.now();
      await store.clones.delete(name);
      return { createMs: t1 - t0, firstReadMs: t2 - t1 };
    };
    const cold = await cloneOnce('cold');
    const warm: { createMs: number; firstReadMs: number }[] = [];
    for (let i = 0; i < WARM_CLONES; i++) warm.push(await cloneOnce(`warm${i}`));
    return {
      volumeBytes, windows, seq,
      coldCreateMs: cold.createMs, coldFirstReadMs: cold.firstReadMs,
      warmCreateMs: median(warm.map((w) => w.createMs)), warmFirstReadMs: median(warm.map((w) => w.firstReadMs)),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchClone(opts: { quick?: boolean } = {}): Promise<CloneRow[]> {
  const windows = opts.quick ? 50 : 200;
  return perVolumeSize('clone', benchSizes(opts.quick === true), (root, size) => one(root, size, windows));
}

export function printClone(rows: CloneRow[]): void {
  console.table(rows.map((r) => ({
    volume: sizeLabel(r.volumeBytes),
    windows: r.windows,
    'create ms cold': fixed(r.coldCreateMs, 1),
    'first read ms cold': fixed(r.coldFirstReadMs, 1),
    'create ms warm': fixed(r.warmCreateMs, 1),
    'first read ms warm': fixed(r.warmFirstReadMs, 1),
    'total ms cold / warm': `${fixed(r.coldCreateMs + r.coldFirstReadMs, 1)} / ${fixed(r.warmCreateMs + r.warmFirstReadMs, 1)}`,
  })));
}

if (isMain(import.meta.url)) printClone(await benchClone({ quick: process.argv.includes('--quick') }));
