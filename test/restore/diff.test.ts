// What changed between two points (`history.diff`, restore/diff.ts) against the reference model: the
// blocks touched by the writes after X up to Y, merged into extents in order, whether they come from
// whole packs' block lists, from the journal (points inside a window, windows not applied yet, the
// open window), or both; the same from a reader in another process; never a block missed or added.
// Points no longer held are refused as a restore refuses them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, openStoreReader, Store } from '../../src/index.js';
import { readPack, listPacks } from '../../src/increment/pack.js';
import { readPackBlocks } from '../../src/increment/pack-sections.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import type { Extent } from '../../src/restore/diff.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { retiredHistory, VOLUME, type RetiredHistory } from '../helpers/retired-history.js';

const B = 4096;
const SIZES = { v: 96 * B, w: 16 * B };

/** The extents the model says: every block a write after `from` up to `to` touched, merged. */
function expected(model: Model, volume: string, from: number, to: number, size: number): Extent[] {
  const blocks = new Set<number>();
  for (const w of model.writes) {
    if (w.seq <= from || w.seq > to || w.volume !== volume) continue;
    for (let b = Math.floor(w.offset / B); b <= Math.floor((w.offset + w.data.length - 1) / B); b++) blocks.add(b);
  }
  const sorted = [...blocks].sort((a, b) => a - b);
  const out: Extent[] = [];
  for (const b of sorted) {
    const last = out[out.length - 1];
    const end = Math.min((b + 1) * B, size);
    if (last && last.offset + last.length === b * B) last.length = end - last.offset;
    else out.push({ offset: b * B, length: end - b * B });
  }
  return out;
}

describe('diff between points of a live store', () => {
  let dir: string;
  let store: Store;
  const model = new Model(SIZES);
  const points: number[] = [0];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rewind-diff-'));
    await initStore(dir, { volumes: Object.entries(SIZES).map(([name, size]) => ({ name, size })), blockSize: B, window: 'marker' });
    store = await Store.open(dir, { threads: 1 });
    const rand = prng(913);
    for (let w = 0; w < 40; w++) {
      for (let k = 1 + Math.floor(rand() * 5); k > 0; k--) {
        const volume = rand() < 0.8 ? 'v' : 'w';
        const size = SIZES[volume as 'v' | 'w'];
        const len = rand() < 0.3 ? B * (1 + Math.floor(rand() * 3)) : 1 + Math.floor(rand() * 2 * B);
        const offset = Math.floor(rand() * (size - len + 1));
        const data = randomBytes(rand, len);
        const seq = await store.write(volume, offset, data);
        model.add({ seq, volume, offset, data, time: 0 });
        points.push(seq);
      }
      store.markWindow();
      if (w % 10 === 9) await store.drain();
    }
    // The open window: its writes are in the journal only.
    for (let k = 0; k < 4; k++) {
      const data = randomBytes(rand, 300);
      const seq = await store.write('v', 95 * B + 600 - k * 5000, data);
      model.add({ seq, volume: 'v', offset: 95 * B + 600 - k * 5000, data, time: 0 });
      points.push(seq);
    }
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives exactly the blocks written after X up to Y, for points at and inside windows, applied or not', () => {
    const rand = prng(5);
    const last = store.lastSeq;
    const pairs: [number, number][] = [[0, last], [0, 0], [last, last], [points[3], points[3] + 1]];
    for (let i = 0; i < 60; i++) {
      const a = Math.floor(rand() * (last + 1));
      const b = Math.floor(rand() * (last + 1));
      pairs.push([Math.min(a, b), Math.max(a, b)]);
    }
    for (const [from, to] of pairs) {
      for (const volume of ['v', 'w']) {
        const r = store.history.diff(volume, { seq: from }, { seq: to });
        expect(r.fromSeq).toBe(from);
        expect(r.toSeq).toBe(to);
        expect(r.extents, `${volume} ${from}..${to}`).toEqual(expected(model, volume, from, to, SIZES[volume as 'v' | 'w']));
      }
    }
  });

  it('reads a pack\'s block lists without its encodings, equal to what the whole pack holds', () => {
    const packs = listPacks(nodeStorage, join(dir, 'increments'));
    expect(packs.length).toBeGreaterThan(0);
    for (const p of packs) {
      const path = join(dir, 'increments', p.name);
      const whole = readPack(nodeStorage, path);
      for (const vol of [0, 1]) expect(readPackBlocks(nodeStorage, path, vol).sort((a, b) => a - b)).toEqual([...whole.blocksOf(vol).keys()].sort((a, b) => a - b));
    }
  });

  it('refuses points out of range and a start after the end, naming them', () => {
    const last = store.lastSeq;
    expect(() => store.history.diff('v', { seq: 5 }, { seq: 2 })).toThrow(/start point seq 5 \(seq 5\) is after the end point seq 2/);
    expect(() => store.history.diff('v', { seq: 0 }, { seq: last + 1 })).toThrow(/after the newest write/);
    expect(() => store.history.diff('nope', { seq: 0 }, { seq: 1 })).toThrow(/unknown volume "nope"/);
  });

  it('a reader in another process sees the same, once the writer has closed', async () => {
    await store.close();
    const reader = await openStoreReader(dir);
    try {
      const last = model.lastSeq;
      for (const [from, to] of [[0, last], [3, last - 2], [last - 3, last]]) {
        expect(reader.history.diff('v', { seq: from }, { seq: to }).extents).toEqual(expected(model, 'v', from, to, SIZES.v));
      }
    } finally {
      reader.close();
    }
    store = await Store.open(dir, { threads: 1 });
  });
});

describe('diff over retired history', () => {
  let h: RetiredHistory;
  beforeAll(async () => {
    h = await retiredHistory(Math.floor(Date.now() / 1000) * 1000);
  }, 60_000);
  afterAll(async () => {
    await h?.store.close();
    if (h) rmSync(join(h.dir, '..'), { recursive: true, force: true });
  });

  it('spans merged packs, window ends and single writes exactly', () => {
    const size = 16 * 4096;
    const pairs: [number, number][] = [[h.windowEnd(3), h.windowEnd(16)], [h.windowEnd(6), h.windowEnd(12)], [h.windowEnd(3), h.windowEnd(13)], [h.windowEnd(14), h.windowEnd(15) - 2], [h.windowEnd(15) - 3, h.windowEnd(16) - 1]];
    for (const [from, to] of pairs) {
      expect(h.store.history.diff(VOLUME, { seq: from }, { seq: to }).extents, `${from}..${to}`).toEqual(expected(h.model, VOLUME, from, to, size));
    }
  });

  it('refuses a point no longer held with the restore\'s message, naming the oldest', () => {
    const err = (() => {
      try {
        h.store.history.diff(VOLUME, { seq: h.windowEnd(4) }, { seq: h.windowEnd(16) });
      } catch (e) {
        return e as { code: string; message: string };
      }
      return null;
    })();
    expect(err?.code).toBe('TARGET_OUT_OF_RANGE');
    expect(err?.message).toContain(`seq ${h.windowEnd(4)} is no longer held`);
    expect(err?.message).toContain(`the oldest restorable point is seq ${h.windowEnd(3)}`);
    expect(() => h.store.history.diff(VOLUME, { seq: h.windowEnd(3) }, { seq: h.windowEnd(5) })).toThrow(/seq 20 is no longer held/);
  });
});
