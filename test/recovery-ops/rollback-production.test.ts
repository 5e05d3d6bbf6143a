// Rolling production back in place (src/recovery-ops/rollback-production.ts), as a library: the volumes
// equal the model at the target (by seq, time or transaction; inside a window and in the open one),
// the rollback is recorded as new writes so the point before it still restores the volume as it was,
// only the blocks that differ are written (the same bytes on a 64 MiB and a 4 GiB volume), bad
// requests write nothing, and a rollback cut short (rollback.json left) is finished when the store
// opens again. The crash simulation is test/sim/rollback-crash.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initStore, ManualClock, rollbackProduction, RewindError, Store } from '../../src/index.js';
import { ROLLBACK_FILE, writeRollbackIntent } from '../../src/recovery-ops/rollback-intent.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { retiredHistory, VOLUME, VOLUME_BYTES } from '../helpers/retired-history.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const B = 4096;
const SIZES = { a: 256 * 1024, b: 128 * 1024 };

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'rewind-rollback-'));
  dirs.push(d);
  return join(d, 'store');
}

const writtenBytes = (store: Store) => Object.fromEntries(store.writeCounts().map((c) => [c.volume, c.bytes]));

/** A store with `n` random writes over two volumes (windows of 5 writes), and its model. */
async function storeWithWrites(n: number, sizes: Record<string, number> = SIZES) {
  const dir = tmp();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await initStore(dir, { volumes: Object.entries(sizes).map(([name, size]) => ({ name, size })), window: 'count:5', clock });
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  const model = new Model(sizes);
  const rand = prng(n);
  const names = Object.keys(sizes);
  for (let i = 0; i < n; i++) {
    const volume = names[Math.floor(rand() * names.length)];
    const len = 1 + Math.floor(rand() * 3 * B);
    const offset = Math.floor(rand() * (sizes[volume] - len + 1));
    const data = randomBytes(rand, len);
    clock.advance(1000);
    model.add({ seq: model.lastSeq + 1, volume, offset, data, time: clock.now() });
    await store.write(volume, offset, data);
  }
  return { dir, clock, store, model };
}

function expectVolume(store: Store, model: Model, volume: string, seq: number, what: string): void {
  const got = store.read(volume, 0, model.sizes[volume]);
  expect(got.equals(model.at(volume, seq)), `${what}: ${volume} equals the model at seq ${seq}`).toBe(true);
}

describe('rolling production back', () => {
  it('sets a volume back to a seq as new writes; the point before the rollback still reads as the volume was, and rolling back to it undoes the rollback', async () => {
    const { store, model } = await storeWithWrites(60);
    const before = store.lastSeq;
    const r = await rollbackProduction(store, { volumes: ['a'], target: { seq: 17 } });
    expect(r).toMatchObject({ seq: 17, nearest: false, beforeSeq: before, firstSeq: before + 1, lastSeq: store.lastSeq });
    expect(r.volumes[0].volume).toBe('a');
    expect(r.volumes[0].blocksWritten).toBeGreaterThan(0);
    expectVolume(store, model, 'a', 17, 'rolled back');
    expectVolume(store, model, 'b', before, 'the other volume untouched');
    // Recorded in history: a view at the seq before it gives the volume as it was.
    expect(store.history.view('a', before).read(0, SIZES.a).equals(model.at('a', before))).toBe(true);
    const undo = await rollbackProduction(store, { volumes: ['a'], target: { seq: before } });
    expect(undo.beforeSeq).toBe(r.lastSeq);
    expectVolume(store, model, 'a', before, 'undone');
    await store.close();
  });

  it('takes a time or a transaction, a target inside a window, and one in the window still open', async () => {
    const { store, model, clock } = await storeWithWrites(40);
    const timeOf = model.writes[22].time; // seq 23, in the middle of window 5
    await rollbackProduction(store, { volumes: ['a', 'b'], target: { time: timeOf } });
    for (const v of ['a', 'b']) expectVolume(store, model, v, 23, 'time');
    const tx3 = store.history.resolve({ tx: 3 });
    await rollbackProduction(store, { volumes: ['b'], target: { tx: 3 } });
    expectVolume(store, model, 'b', tx3, 'tx 3');
    // Seven writes after the rollback (not applied yet, the last two in the open window); back to the third.
    const base = store.lastSeq;
    const expected = store.read('a', 0, SIZES.a);
    const rand = prng(5);
    for (let i = 0; i < 7; i++) {
      const data = randomBytes(rand, B + 100);
      const off = Math.floor(rand() * (SIZES.a / B - 2)) * B + 7;
      if (i < 3) data.copy(expected, off);
      clock.advance(10);
      await store.write('a', off, data);
    }
    expect(store.appliedSeq).toBeLessThan(base + 3);
    await rollbackProduction(store, { volumes: ['a'], target: { seq: base + 3 } });
    expect(store.read('a', 0, SIZES.a).equals(expected)).toBe(true);
    await store.close();
  });

  it('writes only the blocks that differ: the same bytes on a 64 MiB and a 4 GiB sparse volume', async () => {
    const written: number[] = [];
    for (const size of [64 * 2 ** 20, 4 * 2 ** 30]) {
      const dir = tmp();
      await initStore(dir, { volumes: [{ name: 'big', size }], window: 'count:4' });
      const store = await Store.open(dir, { threads: 1 });
      // Eight blocks spread over the volume, then the target; then five of them rewritten and two new ones.
      const at = (i: number) => Math.floor((size / B) * (i / 8)) * B;
      for (let i = 0; i < 8; i++) await store.write('big', at(i), Buffer.alloc(B, i + 1));
      await store.settle();
      const target = store.lastSeq;
      for (const i of [0, 2, 3, 5, 7]) await store.write('big', at(i), Buffer.alloc(B, 0xee));
      await store.write('big', at(7), Buffer.alloc(B, 0xef)); // the same block twice: still one block
      await store.write('big', at(1) + B, Buffer.alloc(B, 9));
      await store.write('big', at(6) + B, Buffer.alloc(2 * B, 9));
      const before = writtenBytes(store).big;
      const r = await rollbackProduction(store, { volumes: ['big'], target: { seq: target } });
      const bytes = writtenBytes(store).big - before;
      // 5 rewritten + 1 + 2 new blocks: exactly those go back, as writes.
      expect(r.volumes[0]).toMatchObject({ changedBlocks: 8, blocksWritten: 8, bytesWritten: 8 * B });
      expect(bytes).toBe(8 * B);
      for (let i = 0; i < 8; i++) expect(store.read('big', at(i), B).equals(Buffer.alloc(B, i + 1))).toBe(true);
      expect(store.read('big', at(6) + B, 2 * B).equals(Buffer.alloc(2 * B))).toBe(true);
      written.push(bytes);
      await store.close();
    }
    expect(written[0]).toBe(written[1]);
  });

  it('skips blocks already equal to the target: a second rollback to the same point writes nothing', async () => {
    const { store, model } = await storeWithWrites(30);
    await rollbackProduction(store, { volumes: ['a', 'b'], target: { seq: 10 } });
    const last = store.lastSeq;
    const again = await rollbackProduction(store, { volumes: ['a', 'b'], target: { seq: 10 } });
    expect(again.firstSeq).toBeNull();
    expect(again.volumes.every((v) => v.bytesWritten === 0)).toBe(true);
    expect(store.lastSeq).toBe(last);
    for (const v of ['a', 'b']) expectVolume(store, model, v, 10, 'again');
    await store.close();
  });
});

describe('bad requests write nothing', () => {
  it('an unknown volume, a target after the newest write, and no volume at all', async () => {
    const { dir, store } = await storeWithWrites(12);
    const last = store.lastSeq;
    await expect(rollbackProduction(store, { volumes: ['nope'], target: { seq: 3 } })).rejects.toMatchObject({ code: 'UNKNOWN_VOLUME' });
    await expect(rollbackProduction(store, { volumes: ['a'], target: { seq: last + 1 } })).rejects.toMatchObject({ code: 'TARGET_OUT_OF_RANGE' });
    await expect(rollbackProduction(store, { volumes: [], target: { seq: 3 } })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(store.lastSeq).toBe(last);
    expect(existsSync(join(dir, ROLLBACK_FILE))).toBe(false);
    await store.close();
  });

  it('a target retention no longer holds is refused naming the held points; nearest takes the one before', async () => {
    const h = await retiredHistory(Date.UTC(2026, 0, 3, 12, 30));
    const last = h.store.lastSeq;
    await expect(rollbackProduction(h.store, { volumes: [VOLUME], target: { seq: h.windowEnd(1) } })).rejects.toThrow(/no longer held.*oldest restorable point is seq 12/);
    expect(h.store.lastSeq).toBe(last);
    const r = await rollbackProduction(h.store, { volumes: [VOLUME], target: { seq: 14 }, nearest: true });
    expect(r).toMatchObject({ seq: 12, nearest: true });
    expect(h.store.read(VOLUME, 0, VOLUME_BYTES).equals(h.model.at(VOLUME, 12))).toBe(true);
    await h.store.close();
    rmSync(join(h.dir, '..'), { recursive: true, force: true });
  });
});

describe('a rollback cut short', () => {
  it('is finished when the store is opened again: production at the target, the intent gone, a warning saying so', async () => {
    const { dir, store, model } = await storeWithWrites(40);
    await store.settle();
    const before = store.lastSeq;
    // As a rollback leaves it when it crashes right after its intent is durable.
    await writeRollbackIntent(nodeStorage, dir, { volumes: ['a', 'b'], targetSeq: 9, beforeSeq: before, requested: 'seq 9', startedAt: new Date().toISOString() });
    await store.close();
    const warnings: string[] = [];
    const reopened = await Store.open(dir, { threads: 1, autoTick: false, clock: new ManualClock(Date.UTC(2026, 0, 2)), onWarning: (m) => warnings.push(m) });
    for (const v of ['a', 'b']) expectVolume(reopened, model, v, 9, 'finished on open');
    expect(existsSync(join(dir, ROLLBACK_FILE))).toBe(false);
    expect(warnings.join('\n')).toMatch(/finished the rollback of a, b to seq 9.*rolling back to seq 40 undoes it/);
    expect(reopened.history.view('a', before).read(0, SIZES.a).equals(model.at('a', before))).toBe(true);
    await reopened.close();
  });

  it('a damaged intent stops the open (CORRUPT, naming the file) and changes nothing', async () => {
    const { dir, store } = await storeWithWrites(10);
    await store.close();
    writeFileSync(join(dir, ROLLBACK_FILE), '{"format":"rewind-rollback","version":1,"volumes":[]}');
    const err = await Store.open(dir, { threads: 1, autoTick: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RewindError);
    expect(err).toMatchObject({ code: 'CORRUPT' });
    expect((err as Error).message).toContain(ROLLBACK_FILE);
    expect(readFileSync(join(dir, ROLLBACK_FILE), 'utf8')).toContain('"volumes":[]');
    // Removing it (as the message says) opens the store as it is.
    rmSync(join(dir, ROLLBACK_FILE));
    const s = await Store.open(dir, { threads: 1, autoTick: false });
    expect(s.lastSeq).toBe(10);
    await s.close();
  });
});
