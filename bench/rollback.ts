// Rolling production back in place: the same change set (windows of 16 random 4 KiB writes after the
// target) rolled back on sparse volumes of 64 MiB to 16 GiB. The rollback's time should follow the
// bytes changed, not the volume size; a restore of the same point to a file (which, like `rbd snap
// rollback`, goes over the whole volume) is the O(size) reference.
//
// Run alone: npm run build && node dist/bench/rollback.js [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initStore, rollbackProduction, Store } from '../src/index.js';
import { prng } from '../src/prng.js';
import { fixed } from './format.js';
import { isMain } from './main-module.js';

export interface RollbackRow {
  volumeBytes: number;
  /** Blocks changed after the target (those the rollback compares). */
  changedBlocks: number;
  bytesWritten: number;
  rollbackSeconds: number;
  /** Restoring the same point to a file: the whole volume is gone over. */
  restoreSeconds: number;
}

const WRITE_BYTES = 4096;
const WRITES_PER_WINDOW = 16;
const GiB = 2 ** 30;

async function one(volumeBytes: number, windows: number): Promise<RollbackRow> {
  const root = mkdtempSync(join(tmpdir(), 'rewind-bench-rollback-'));
  try {
    const dir = join(root, 'store');
    await initStore(dir, { volumes: [{ name: 'v', size: volumeBytes }], window: 'marker' });
    const store = await Store.open(dir);
    const rand = prng(42);
    const data = Buffer.allocUnsafe(WRITE_BYTES);
    // The same offsets on every volume size: a block number drawn from the smallest volume's range.
    const blocks = (64 * 2 ** 20) / WRITE_BYTES;
    const writeWindows = async (n: number) => {
      for (let w = 0; w < n; w++) {
        for (let k = 0; k < WRITES_PER_WINDOW; k++) {
          for (let i = 0; i < WRITE_BYTES; i += 4) data.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
          const block = Math.floor(rand() * blocks) * (volumeBytes / (64 * 2 ** 20));
          await store.write('v', block * WRITE_BYTES, data);
        }
        store.markWindow();
      }
      await store.settle();
    };
    await writeWindows(windows);
    const target = store.lastSeq;
    await writeWindows(windows);
    const t0 = performance.now();
    const r = await rollbackProduction(store, { volumes: ['v'], target: { seq: target } });
    const rollbackSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await store.restore('v', { seq: target }, join(root, 'restored.img'));
    const restoreSeconds = (performance.now() - t1) / 1000;
    await store.close();
    return { volumeBytes, changedBlocks: r.volumes[0].changedBlocks, bytesWritten: r.volumes[0].bytesWritten, rollbackSeconds, restoreSeconds };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function benchRollback(opts: { quick?: boolean } = {}): Promise<RollbackRow[]> {
  const sizes = opts.quick ? [64 * 2 ** 20, 4 * GiB] : [64 * 2 ** 20, 1 * GiB, 4 * GiB, 16 * GiB];
  const windows = opts.quick ? 16 : 64;
  const rows: RollbackRow[] = [];
  for (const size of sizes) rows.push(await one(size, windows));
  return rows;
}

export function printRollback(rows: RollbackRow[]): void {
  console.table(rows.map((r) => ({
    volume: r.volumeBytes >= GiB ? `${r.volumeBytes / GiB} GiB` : `${r.volumeBytes / 2 ** 20} MiB`,
    'changed blocks': r.changedBlocks,
    'MiB written': fixed(r.bytesWritten / 2 ** 20, 1),
    'rollback s': fixed(r.rollbackSeconds, 3),
    'restore to file s': fixed(r.restoreSeconds, 3),
  })));
}

if (isMain(import.meta.url)) printRollback(await benchRollback({ quick: process.argv.includes('--quick') }));
