// A store with the same change set on sparse volumes of any size, for the rows that should not
// depend on the volume size (clone create + first read, diff): windows of 16 random 4 KiB writes at
// the same block positions relative to the volume, so a larger volume holds the same history spread
// wider, and nothing else (production and replica stay sparse).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initStore, Store } from '../src/index.js';
import { prng } from '../src/prng.js';

export const WRITE_BYTES = 4096;
const WRITES_PER_WINDOW = 16;
/** Block numbers are drawn from the smallest volume's range, then spread over the volume. */
const SMALLEST_VOLUME_BYTES = 64 * 2 ** 20;

/**
 * Creates a store in `dir` with one sparse volume "v" of `volumeBytes` (a multiple of 64 MiB), opens
 * it as the writer and writes `windows` windows; returns the writer (settled) and the last seq of
 * every window.
 */
export async function storeWithChanges(dir: string, volumeBytes: number, windows: number, seed = 42): Promise<{ store: Store; ends: number[] }> {
  await initStore(dir, { volumes: [{ name: 'v', size: volumeBytes }], window: 'marker' });
  const store = await Store.open(dir);
  const rand = prng(seed);
  const data = Buffer.allocUnsafe(WRITE_BYTES);
  const blocks = SMALLEST_VOLUME_BYTES / WRITE_BYTES;
  const spread = volumeBytes / SMALLEST_VOLUME_BYTES;
  const ends: number[] = [];
  for (let w = 0; w < windows; w++) {
    for (let k = 0; k < WRITES_PER_WINDOW; k++) {
      for (let i = 0; i < WRITE_BYTES; i += 4) data.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
      await store.write('v', Math.floor(rand() * blocks) * spread * WRITE_BYTES, data);
    }
    store.markWindow();
    ends.push(store.lastSeq);
    if (w % 50 === 49) await store.drain();
  }
  await store.settle();
  return { store, ends };
}

/** `64 MiB`, `4 GiB`. */
export function sizeLabel(bytes: number): string {
  return bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : `${bytes / 2 ** 20} MiB`;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The volume sizes a bench compares: 64 MiB to 16 GiB (two of them when quick). */
export function benchSizes(quick: boolean): number[] {
  const GiB = 2 ** 30;
  return quick ? [64 * 2 ** 20, 4 * GiB] : [64 * 2 ** 20, GiB, 4 * GiB, 16 * GiB];
}

/** Runs `one` for each size in a temporary directory of its own (`name` prefixes it), removed after. */
export async function perVolumeSize<T>(name: string, sizes: number[], one: (root: string, size: number) => Promise<T>): Promise<T[]> {
  const root = mkdtempSync(join(tmpdir(), `rewind-bench-${name}-`));
  try {
    const rows: T[] = [];
    for (const size of sizes) rows.push(await one(root, size));
    return rows;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
