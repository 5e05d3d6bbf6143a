// Out of space and I/O errors: the failing write gets the error, nothing acknowledged is lost,
// and writing resumes once the disk recovers. Faults come through the storage interface.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { initStore, ManualClock, RewindError, Store } from '../../src/index.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { until } from '../helpers/until.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(window: string) {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-fault-'));
  dirs.push(dir);
  const clock = new ManualClock();
  await initStore(dir, { volumes: [{ name: 'v', size: 1 << 20 }], window, clock });
  const storage = new FaultyStorage();
  const store = await Store.open(dir, { storage, clock, threads: 1, autoTick: false });
  return { dir, storage, store, model: new Model({ v: 1 << 20 }), rand: prng(9) };
}

it('a journal that runs out of space fails that write with ENOSPC, keeps the rest, and resumes', async () => {
  const { dir, storage, store, model, rand } = await setup('count:5');
  const write = async () => {
    const len = 1 + Math.floor(rand() * 9000);
    const offset = Math.floor(rand() * ((1 << 20) - len));
    const data = randomBytes(rand, len);
    const seq = await store.write('v', offset, data);
    model.add({ seq, volume: 'v', offset, data, time: 0 });
  };
  for (let i = 0; i < 23; i++) await write();
  await store.flush();
  storage.fault = { path: /journal/, code: 'ENOSPC' };
  const err = await store.write('v', 0, Buffer.alloc(10, 1)).catch((e) => e);
  expect(err).toBeInstanceOf(RewindError);
  expect((err as RewindError).errno).toBe('ENOSPC');
  expect((err as Error).message).toMatch(/journaling a write to volume "v" at 0/);
  expect(store.lastSeq).toBe(23);
  storage.fault = null;
  for (let i = 0; i < 20; i++) await write();
  expect(store.lastSeq).toBe(43);
  await store.settle();
  await store.close();
  expect(readFileSync(join(dir, 'volumes', 'v')).equals(model.at('v', 43))).toBe(true);
  expect(readFileSync(join(dir, 'replica', 'v')).equals(model.at('v', 43))).toBe(true);
});

it('a pack write that fails is retried: writes go on, windows apply once the disk recovers', async () => {
  const { dir, storage, store, model, rand } = await setup('count:4');
  storage.fault = { path: /increments/, code: 'ENOSPC' };
  for (let i = 0; i < 12; i++) {
    const len = 1 + Math.floor(rand() * 5000);
    const offset = Math.floor(rand() * ((1 << 20) - len));
    const data = randomBytes(rand, len);
    const seq = await store.write('v', offset, data);
    model.add({ seq, volume: 'v', offset, data, time: 0 });
  }
  await store.flush();
  await until(() => storage.injected > 0, { what: 'the apply loop tries to write a pack' });
  expect(storage.injected).toBeGreaterThan(0);
  expect(store.appliedSeq).toBe(0);
  // The past is readable meanwhile, from the journal.
  expect(store.history.view('v', 7).read(0, 1 << 20).equals(model.at('v', 7))).toBe(true);
  storage.fault = null;
  await store.settle();
  expect(store.appliedSeq).toBe(12);
  for (const seq of [0, 3, 4, 9, 12]) expect(store.history.view('v', seq).read(0, 1 << 20).equals(model.at('v', seq)), `seq ${seq}`).toBe(true);
  await store.close();
  expect(readFileSync(join(dir, 'replica', 'v')).equals(model.at('v', 12))).toBe(true);
});

it('a replica write that fails after the pack is durable is redone from the pack, not rebuilt', async () => {
  const { dir, storage, store, model, rand } = await setup('count:3');
  for (let i = 0; i < 6; i++) {
    const data = randomBytes(rand, 6000);
    const offset = i * 3000;
    const seq = await store.write('v', offset, data);
    model.add({ seq, volume: 'v', offset, data, time: 0 });
  }
  await store.settle();
  // Three separate runs of blocks: the first replica write succeeds, the second fails, so the
  // replica is partly updated; rebuilding the pack from it would record wrong old contents.
  storage.fault = { path: /replica/, code: 'EIO', skip: 1 };
  for (let i = 0; i < 3; i++) {
    const data = randomBytes(rand, 7000);
    const offset = 1000 + i * 300_000;
    const seq = await store.write('v', offset, data);
    model.add({ seq, volume: 'v', offset, data, time: 0 });
  }
  await until(() => storage.injected > 0, { what: 'the apply loop tries the second replica write' });
  expect(store.appliedSeq).toBe(6);
  storage.fault = null;
  await store.settle();
  expect(store.appliedSeq).toBe(9);
  for (const seq of [5, 6, 7, 9]) expect(store.history.view('v', seq).read(0, 1 << 20).equals(model.at('v', seq)), `seq ${seq}`).toBe(true);
  await store.close();
  expect(readFileSync(join(dir, 'replica', 'v')).equals(model.at('v', 9))).toBe(true);
});

it('the writes of one synchronous run are journaled with one vectored write; when it fails they all fail and no sequence number is used', async () => {
  const { dir, storage, store, model, rand } = await setup('count:5');
  const batch = () => Array.from({ length: 4 }, (_, i) => ({ offset: i * 9000 + Math.floor(rand() * 1000), data: randomBytes(rand, 1 + Math.floor(rand() * 8000)) }));
  for (let i = 0; i < 3; i++) model.add({ seq: await store.write('v', i * 100, Buffer.alloc(50, i + 1)), volume: 'v', offset: i * 100, data: Buffer.alloc(50, i + 1), time: 0 });
  await store.flush();

  // One journal write lets the whole batch through (skip 1), the next one fails: one writev for all four.
  storage.fault = { path: /journal/, code: 'EIO', skip: 1, times: 1 };
  const first = batch();
  const seqs = await Promise.all(first.map((w) => store.writeBatched('v', w.offset, w.data)));
  expect(seqs).toEqual([4, 5, 6, 7]);
  first.forEach((w, i) => model.add({ seq: seqs[i], volume: 'v', offset: w.offset, data: w.data, time: 0 }));
  expect(storage.injected).toBe(0);
  await expect(store.write('v', 0, Buffer.alloc(10, 9))).rejects.toThrow(/journaling a write/);
  expect(storage.injected).toBe(1);

  // A batch whose write fails half-way: every write of it fails, nothing is consumed, no record stays.
  storage.fault = { path: /journal/, code: 'ENOSPC', times: 1, partial: true };
  const failed = await Promise.allSettled(batch().map((w) => store.writeBatched('v', w.offset, w.data)));
  expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
  for (const r of failed) expect(((r as PromiseRejectedResult).reason as RewindError).errno).toBe('ENOSPC');
  expect(store.lastSeq).toBe(7);

  const after = batch();
  const again = await Promise.all(after.map((w) => store.writeBatched('v', w.offset, w.data)));
  expect(again).toEqual([8, 9, 10, 11]);
  after.forEach((w, i) => model.add({ seq: again[i], volume: 'v', offset: w.offset, data: w.data, time: 0 }));
  await store.settle();
  for (const seq of [3, 7, 9, 11]) expect(store.history.view('v', seq).read(0, 1 << 20).equals(model.at('v', seq)), `seq ${seq}`).toBe(true);
  await store.close();
  expect(readFileSync(join(dir, 'volumes', 'v')).equals(model.at('v', 11))).toBe(true);
  expect(readFileSync(join(dir, 'replica', 'v')).equals(model.at('v', 11))).toBe(true);
  // Reopened, the journal holds exactly seqs 1..11 (the failed batch left nothing behind).
  const reopened = await Store.open(dir, { storage, clock: new ManualClock(), threads: 1, autoTick: false });
  expect(reopened.lastSeq).toBe(11);
  expect(reopened.history.view('v', 11).read(0, 1 << 20).equals(model.at('v', 11))).toBe(true);
  await reopened.close();
});
