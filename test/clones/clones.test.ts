// Writable clones through the library: a clone reads as its volume at its point, takes writes of any
// alignment into its overlay, and leaves production, the replica, the journal and the history as they
// were. Its point is held by retention until it is deleted; its byte limit gives ENOSPC; creating one
// reads and writes nothing in proportion to the volume.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initStore, ManualClock, openStoreReader, RewindError, Store } from '../../src/index.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { countingStorage } from './counting-storage.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const KiB = 1024;
const MIN = 60_000;
const SIZE = 256 * KiB;

function tempStore(): string {
  const d = mkdtempSync(join(tmpdir(), 'rewind-clone-'));
  dirs.push(d);
  return join(d, 'store');
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A store with two volumes and 40 writes in windows of 4, one every 30 s, all applied. */
async function storeWithHistory(retain?: string) {
  const dir = tempStore();
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 10));
  await initStore(dir, { volumes: [{ name: 'v', size: SIZE }, { name: 'w', size: SIZE }], window: 'count:4', retain, clock });
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false, autoLifecycle: false, limits: { segmentBytesMax: 16 * KiB } });
  const model = new Model({ v: SIZE, w: SIZE });
  const rand = prng(7);
  for (let i = 0; i < 40; i++) {
    clock.advance(MIN / 2);
    const volume = i % 3 === 0 ? 'w' : 'v';
    const len = 1 + Math.floor(rand() * 9000);
    const offset = Math.floor(rand() * (SIZE - len));
    const data = randomBytes(rand, len);
    model.add({ seq: i + 1, volume, offset, data, time: clock.now() });
    await store.write(volume, offset, data);
  }
  await store.settle();
  return { dir, clock, store, model };
}

/** What a clone must never change: production, replica and journal bytes, the newest seq, the packs. */
function fingerprint(dir: string, store: Store) {
  const files = (sub: string) => readdirSync(join(dir, sub)).sort().map((n) => `${n}:${sha(readFileSync(join(dir, sub, n)))}`);
  return { lastSeq: store.lastSeq, volumes: files('volumes'), replica: files('replica'), journal: files('journal'), increments: files('increments') };
}

describe('a writable clone', () => {
  it('reads as the volume at its point, keeps its writes, and changes nothing else', async () => {
    const { dir, store, model } = await storeWithHistory();
    const rec = await store.clones.create('test1', 'v', { seq: 17 });
    expect(rec).toMatchObject({ name: 'test1', volume: 'v', seq: 17, maxBytes: null });
    const before = fingerprint(dir, store);
    const h = await store.clones.acquire('test1');
    const expected = Buffer.from(model.at('v', 17));
    expect(h.clone.read(0, SIZE).equals(expected)).toBe(true);

    // Writes of every alignment: inside a block, across blocks, whole blocks, up to the end.
    const rand = prng(3);
    for (const [offset, len] of [[100, 10], [4000, 200], [8192, 8192], [SIZE - 5000, 5000], [12345, 30000], [0, 1]]) {
      const data = randomBytes(rand, len);
      h.clone.write(offset, data);
      data.copy(expected, offset);
    }
    h.clone.writeZeroes(50_000, 10_000);
    expected.fill(0, 50_000, 60_000);
    await h.clone.flush();
    expect(h.clone.read(0, SIZE).equals(expected)).toBe(true);
    expect(h.clone.read(4000, 300).equals(expected.subarray(4000, 4300))).toBe(true);

    // Production, the replica, the journal and the packs are as they were; so is every view.
    expect(fingerprint(dir, store)).toEqual(before);
    expect(store.read('v', 0, SIZE).equals(model.at('v', 40))).toBe(true);
    const view = store.history.view('v', 17);
    expect(view.read(0, SIZE).equals(model.at('v', 17))).toBe(true);
    view.close();

    // Closed and opened again (another store session): the writes are there.
    await h.close();
    await store.close();
    const again = await Store.open(dir, { threads: 1, autoTick: false, autoLifecycle: false });
    const h2 = await again.clones.acquire('test1');
    expect(h2.clone.read(0, SIZE).equals(expected)).toBe(true);
    expect(again.clones.list()).toMatchObject([{ name: 'test1', seq: 17, usedBytes: h2.clone.usedBytes, openBy: [process.pid] }]);
    await h2.close();
    await again.close();
  });

  it('keeps writes flushed before a crash (the store aborted, the clone not closed)', async () => {
    const { dir, store, model } = await storeWithHistory();
    await store.clones.create('c', 'w', { tx: 3 });
    const h = await store.clones.acquire('c');
    const expected = Buffer.from(model.at('w', 12));
    const data = Buffer.alloc(9000, 0x5a);
    h.clone.write(777, data);
    data.copy(expected, 777);
    await h.clone.flush();
    await store.abort();
    // The lock of the aborted store is this process's: the next writer is told the stop was unclean.
    const again = await Store.open(dir, { threads: 1, autoTick: false, autoLifecycle: false, lock: () => ({ unclean: true, release() {} }) });
    const h2 = await again.clones.acquire('c');
    expect(h2.clone.read(0, SIZE).equals(expected)).toBe(true);
    await h2.close();
    await again.close();
  });

  it('gets ENOSPC past --max-bytes and changes nothing', async () => {
    const { store } = await storeWithHistory();
    await store.clones.create('small', 'v', { seq: 5 }, { maxBytes: 3 * 4096 });
    const h = await store.clones.acquire('small');
    h.clone.write(0, Buffer.alloc(8192, 1)); // two blocks
    const before = h.clone.read(0, SIZE);
    let err: unknown = null;
    try {
      h.clone.write(8000, Buffer.alloc(8192, 2)); // needs blocks 2 and 3: one too many
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RewindError);
    expect((err as RewindError).errno).toBe('ENOSPC');
    expect((err as RewindError).message).toMatch(/clone small: .*limit of 12288 \(--max-bytes\)/);
    expect(h.clone.read(0, SIZE).equals(before)).toBe(true);
    expect(() => h.clone.writeZeroes(4096 * 10, 4096 * 2)).toThrow(/--max-bytes/);
    // Rewrites of blocks it holds, and one more block, still fit.
    h.clone.write(100, Buffer.alloc(5000, 3));
    h.clone.write(8192, Buffer.alloc(4096, 4));
    expect(h.clone.usedBytes).toBe(3 * 4096);
    await h.close();
    await store.close();
  });

  it('refuses bad names and targets, and changes nothing', async () => {
    const { dir, store } = await storeWithHistory();
    await store.clones.create('taken', 'v', { seq: 3 });
    const cases: [string, string, object, RegExp][] = [
      ['a/b', 'v', { seq: 1 }, /clone name "a\/b" must be/],
      ['a@seq=1', 'v', { seq: 1 }, /clone name/],
      ['.hidden', 'v', { seq: 1 }, /clone name/],
      ['x'.repeat(65), 'v', { seq: 1 }, /1-64/],
      ['w', 'v', { seq: 1 }, /is the name of a volume/],
      ['taken', 'v', { seq: 1 }, /already exists/],
      ['ok', 'nope', { seq: 1 }, /unknown volume "nope"/],
      ['ok', 'v', { seq: 999 }, /after the newest write/],
      ['ok', 'v', { tx: 99 }, /does not exist/],
    ];
    for (const [name, volume, target, re] of cases) await expect(store.clones.create(name, volume, target as { seq: number })).rejects.toThrow(re);
    await expect(store.clones.create('ok', 'v', { seq: 1 }, { maxBytes: 100 })).rejects.toThrow(/at least one block/);
    expect(readdirSync(join(dir, 'clones'))).toEqual(['taken.clone', 'taken.map', 'taken.overlay']);
    await expect(store.clones.delete('nope')).rejects.toThrow(/no clone "nope" \(clones: "taken"\)/);
    const h = await store.clones.acquire('taken');
    await expect(store.clones.delete('taken')).rejects.toThrow(/in use by process \d+ \(this process\)/);
    await h.close();
    await store.clones.delete('taken');
    expect(readdirSync(join(dir, 'clones'))).toEqual([]);
    await store.close();
  });
});

describe('retention and clones', () => {
  it('keeps the point a clone is based on until the clone is deleted, and says so', async () => {
    const { dir, clock, store, model } = await storeWithHistory('windows:2m,hourly:1d');
    const warnings: string[] = [];
    await store.close();
    const s = await Store.open(dir, { clock, threads: 1, autoTick: false, autoLifecycle: false, limits: { segmentBytesMax: 16 * KiB }, onWarning: (m) => warnings.push(m) });
    // seq 18 is inside a window (its single writes are replayed from the journal): the strictest hold.
    await s.clones.create('keep', 'v', { seq: 18 });
    clock.advance(3 * 60 * MIN);
    await s.consolidate();
    expect(s.status().clones).toEqual([{ name: 'keep', volume: 'v', seq: 18, heldPastPolicy: true }]);
    expect(warnings.join('\n')).toMatch(/clones keep history the retention policy would retire: keep \(seq 18\)/);
    // Still restorable, by the store and by a reader in another process; the clone reads it.
    const view = s.history.view('v', 18);
    expect(view.read(0, SIZE).equals(model.at('v', 18))).toBe(true);
    view.close();
    const reader = await openStoreReader(dir);
    expect(reader.status().clones[0]).toMatchObject({ name: 'keep', heldPastPolicy: true });
    reader.close();
    const h = await s.clones.acquire('keep');
    expect(h.clone.read(0, SIZE).equals(model.at('v', 18))).toBe(true);
    await h.close();
    // Once it is deleted, the policy has its way: the hour is one point, its end.
    await s.clones.delete('keep');
    await s.consolidate();
    expect(() => s.history.view('v', 18)).toThrow(/no longer held/);
    expect(() => s.history.view('v', 30)).toThrow(/no longer held/);
    expect(s.status().clones).toEqual([]);
    expect(warnings.at(-1)).toMatch(/no clone keeps history past the retention policy/);
    await s.close();
  });

  it('reads right while packs after its point are merged under it', async () => {
    const { clock, store, model } = await storeWithHistory('windows:2m,hourly:1d');
    await store.clones.create('early', 'v', { seq: 0 });
    const h = await store.clones.acquire('early');
    h.clone.write(0, Buffer.alloc(4096, 9));
    const expected = Buffer.from(model.at('v', 0));
    expected.fill(9, 0, 4096);
    expect(h.clone.read(0, SIZE).equals(expected)).toBe(true);
    clock.advance(3 * 60 * MIN);
    const r = await store.consolidate();
    expect(r.merged).toBeGreaterThan(0);
    expect(h.clone.read(0, SIZE).equals(expected)).toBe(true);
    await h.close();
    await store.close();
  });
});

describe('creating a clone', () => {
  it('reads and writes no more for a 4 GiB volume than for a 64 MiB one (no copy)', async () => {
    const costs: { read: number; written: number }[] = [];
    for (const size of [64 * 2 ** 20, 4 * 2 ** 30]) {
      const dir = tempStore();
      await initStore(dir, { volumes: [{ name: 'big', size }], window: 'count:2' });
      const counting = countingStorage(nodeStorage);
      const store = await Store.open(dir, { storage: counting.storage, threads: 1, autoTick: false, autoLifecycle: false });
      for (let i = 0; i < 6; i++) await store.write('big', i * 1_000_000, Buffer.alloc(5000, i + 1));
      await store.settle();
      counting.reset();
      await store.clones.create('c', 'big', { seq: 3 });
      const h = await store.clones.acquire('c');
      expect(h.clone.read(2_000_000, 4096).equals(Buffer.alloc(4096, 3))).toBe(true);
      costs.push(counting.totals());
      await h.close();
      await store.close();
    }
    expect(costs[0].read).toBe(costs[1].read);
    expect(costs[0].written).toBe(costs[1].written);
    // What it does read is the history after the point (the packs the view sets blocks back from).
    expect(costs[1].read + costs[1].written).toBeLessThan(256 * KiB);
  });
});
