// Restores and views far back over many windows with heavily overlapping blocks, against the
// reference model: every block must come back as it was before the earliest window after the
// target that changed it, whether the restore decodes it into memory before copying the replica,
// writes it after the copy (memory budget passed), or a view decodes it on read.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, Store } from '../../src/index.js';
import { Model, prng, randomBytes } from '../helpers/model.js';

const SIZE = 192 * 1024; // 48 blocks of 4 KiB: every window overlaps earlier ones
const B = 4096;
const WINDOWS = 240;

let dir: string;
let store: Store;
const model = new Model({ v: SIZE, w: 64 * 1024 });
const windowEnds: number[] = [];

function firstDiff(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-many-windows-'));
  await initStore(dir, { volumes: [{ name: 'v', size: SIZE }, { name: 'w', size: 64 * 1024 }], blockSize: B, window: 'marker' });
  store = await Store.open(dir, { threads: 1 });
  const rand = prng(4242);
  for (let w = 0; w < WINDOWS; w++) {
    const writes = 1 + Math.floor(rand() * 6);
    for (let k = 0; k < writes; k++) {
      const volume = rand() < 0.85 ? 'v' : 'w';
      const size = volume === 'v' ? SIZE : 64 * 1024;
      const r = rand();
      // whole blocks (backward increment: old XOR new), pieces of blocks, runs across blocks, zeroes
      const len = r < 0.3 ? B * (1 + Math.floor(rand() * 3)) : r < 0.7 ? 1 + Math.floor(rand() * 3000) : 1 + Math.floor(rand() * 3 * B);
      let offset = Math.floor(rand() * (size - len + 1));
      if (r < 0.3) offset -= offset % B;
      const data = rand() < 0.15 ? Buffer.alloc(len) : randomBytes(rand, len);
      const seq = await store.write(volume, offset, data);
      model.add({ seq, volume, offset, data, time: 0 });
    }
    store.markWindow();
    windowEnds.push(store.lastSeq);
    if (w % 40 === 39) await store.drain();
  }
  // A few writes in the open window: targets there replay journal writes over the replica.
  for (let k = 0; k < 5; k++) {
    const data = randomBytes(rand, 777);
    const offset = 1000 * k + 5;
    const seq = await store.write('v', offset, data);
    model.add({ seq, volume: 'v', offset, data, time: 0 });
  }
  await store.settle();
}, 120_000);

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Window ends far and near, points inside windows, 0 and the newest write. */
function targets(): number[] {
  const rand = prng(99);
  const t = new Set<number>([0, 1, model.lastSeq, model.lastSeq - 2]);
  for (const back of [1, 2, 10, 100, WINDOWS - 1]) t.add(windowEnds[windowEnds.length - 1 - back]);
  for (let i = 0; i < 14; i++) t.add(1 + Math.floor(rand() * (model.lastSeq - 1)));
  return [...t].sort((a, b) => a - b);
}

describe('restore and views over many overlapping windows', () => {
  it.each([
    ['all old blocks decoded before the copy', 256 * 2 ** 20],
    ['memory budget of 5 blocks: the rest written after the copy', 5 * B],
    ['no memory budget: every block written after the copy', 0],
  ])('restore equals the model at every target (%s)', async (_what, budget) => {
    store.history.restoreRollbackBytes = budget;
    try {
      const out = join(dir, 'restored');
      for (const seq of targets()) {
        for (const volume of ['v', 'w']) {
          await store.history.restore(volume, { seq }, out);
          const got = readFileSync(out);
          const want = model.at(volume, seq);
          expect(firstDiff(got, want), `restore of ${volume} at seq ${seq} (budget ${budget}) differs at byte`).toBe(-1);
        }
      }
    } finally {
      store.history.restoreRollbackBytes = 256 * 2 ** 20;
    }
  }, 120_000);

  it('views equal the model at every target, read whole, in blocks and in unaligned pieces', () => {
    const rand = prng(7);
    for (const seq of targets()) {
      const want = model.at('v', seq);
      const view = store.history.view('v', seq);
      expect(firstDiff(view.read(0, SIZE), want), `view at seq ${seq}`).toBe(-1);
      for (let i = 0; i < 20; i++) {
        const offset = Math.floor(rand() * SIZE);
        const len = 1 + Math.floor(rand() * Math.min(3 * B, SIZE - offset));
        expect(firstDiff(view.read(offset, len), want.subarray(offset, offset + len)), `view at seq ${seq}, ${offset}+${len}`).toBe(-1);
      }
    }
  });
});
