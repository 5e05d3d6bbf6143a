// Capacity: a store whose history would be ten times its capacity stays under it while writes go on,
// no write is refused or failed for it, the newest points still restore exactly, and the shortfall
// against the retention policy is reported (status and a log line), never silent.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { Model, prng, randomBytes } from '../helpers/model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MiB = 2 ** 20;

function historyFileBytes(dir: string): number {
  let total = 0;
  for (const sub of ['journal', 'increments', 'index']) for (const name of readdirSync(join(dir, sub))) total += statSync(join(dir, sub, name)).size;
  return total;
}

it('keeps history under the capacity with ten times as many bytes written, never refusing a write', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-capacity-'));
  dirs.push(dir);
  const capacity = 16 * MiB;
  const size = 4 * MiB;
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await initStore(dir, { volumes: [{ name: 'v', size }], window: 'count:16', retain: 'writes:1h,windows:1d', capacity: String(capacity), clock });
  const warnings: string[] = [];
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false, limits: { segmentBytesMax: 2 * MiB }, onWarning: (m) => warnings.push(m) });
  const model = new Model({ v: size });
  const rand = prng(42);
  let maxHistory = 0;
  let written = 0;
  while (written < 10 * capacity) {
    const len = 64 * 1024;
    const offset = Math.floor(rand() * (size / len)) * len;
    const data = randomBytes(rand, len);
    clock.advance(10);
    model.add({ seq: model.lastSeq + 1, volume: 'v', offset, data, time: clock.now() });
    expect(await store.write('v', offset, data)).toBe(model.lastSeq); // never refused
    written += len;
    if (model.lastSeq % 64 === 0) {
      await store.flush();
      await store.drain();
      await store.consolidate();
      maxHistory = Math.max(maxHistory, historyFileBytes(dir));
    }
  }
  await store.settle();
  await store.consolidate();
  const bytes = historyFileBytes(dir);
  expect(bytes).toBeLessThanOrEqual(capacity);
  expect(maxHistory).toBeLessThanOrEqual(capacity);
  // The newest points are exact.
  for (const seq of [model.lastSeq, model.lastSeq - 1, model.lastSeq - 16]) {
    const view = store.history.view('v', seq);
    expect(view.read(0, size).equals(model.at('v', seq))).toBe(true);
    view.close();
  }
  // Retired beyond the policy (every write of the last hour was promised): reported, not silent.
  const s = store.status();
  expect(s.historyBytes).toBeLessThanOrEqual(capacity);
  expect(s.capacityBytes).toBe(capacity);
  expect(s.protection.requiredSeconds).toBe(3600);
  expect(s.protection.achievedSeconds).toBeLessThan(3600 * 0.75);
  expect(warnings.some((w) => /retired before the retention policy says/.test(w))).toBe(true);
  // The oldest point the store names is refused no more; one before it is.
  const oldest = s.oldestRestorable.seq;
  expect(oldest).toBeGreaterThan(0);
  const v = store.history.view('v', oldest);
  expect(v.read(0, size).equals(model.at('v', oldest))).toBe(true);
  v.close();
  expect(() => store.history.view('v', oldest - 1)).toThrow(/no longer held/);
  await store.close();
});

it('narrows segments, windows, single writes and the lag bound to the capacity, and follows a new one while open', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-capacity-'));
  dirs.push(dir);
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await initStore(dir, { volumes: [{ name: 'v', size: MiB }], capacity: String(256 * MiB), clock });
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  expect(store.limits).toMatchObject({ segmentBytesMax: 8 * MiB, windowBytesMax: 8 * MiB, writeBytesMax: 8 * MiB, pendingBytesMax: 32 * MiB });
  const { readConfig, writeConfig } = await import('../../src/config.js');
  const { nodeStorage } = await import('../../src/storage/node-storage.js');
  await writeConfig(nodeStorage, dir, { ...readConfig(nodeStorage, dir), capacity: String(64 * MiB) });
  expect(store.reloadConfig()).toBe(true);
  expect(store.limits).toMatchObject({ segmentBytesMax: 2 * MiB, windowBytesMax: 2 * MiB, writeBytesMax: 2 * MiB, pendingBytesMax: 8 * MiB });
  // A write over the narrowed single-write limit is refused by the store (serve splits such writes).
  await expect(store.write('v', 0, Buffer.alloc(2 * MiB + 4096))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
  await writeConfig(nodeStorage, dir, { ...readConfig(nodeStorage, dir), capacity: undefined });
  expect(store.reloadConfig()).toBe(true);
  expect(store.limits).toMatchObject({ segmentBytesMax: 64 * MiB, windowBytesMax: 64 * MiB, writeBytesMax: 32 * MiB });
  await store.close();
});

it('consolidates and enforces the capacity in the same passes without a step failing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-capacity-'));
  dirs.push(dir);
  const size = 2 * MiB;
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await initStore(dir, { volumes: [{ name: 'v', size }], window: 'count:8', retain: 'writes:2s,minutely:1h', capacity: String(16 * MiB), clock });
  const warnings: string[] = [];
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false, autoLifecycle: false, onWarning: (m) => warnings.push(m) });
  const model = new Model({ v: size });
  const rand = prng(9);
  let merged = 0;
  for (let i = 1; i <= 3000; i++) {
    const len = 32 * 1024;
    const offset = Math.floor(rand() * (size / len)) * len;
    const data = randomBytes(rand, len);
    clock.advance(1000); // a minute's windows are merged while younger history still fits
    model.add({ seq: i, volume: 'v', offset, data, time: clock.now() });
    await store.write('v', offset, data);
    if (i % 40 === 0) {
      await store.drain();
      merged += (await store.consolidate()).merged;
      expect(historyFileBytes(dir)).toBeLessThanOrEqual(16 * MiB);
    }
  }
  expect(merged).toBeGreaterThan(0);
  expect(warnings.filter((w) => /history lifecycle:/.test(w))).toEqual([]);
  const oldest = store.status().oldestRestorable.seq;
  for (const seq of [oldest, model.lastSeq]) {
    const view = store.history.view('v', seq);
    expect(view.read(0, size).equals(model.at('v', seq))).toBe(true);
    view.close();
  }
  await store.close();
});

it('lets windows grow back when a larger capacity is set while the store is open (the arena holds them)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-capacity-'));
  dirs.push(dir);
  const size = 64 * MiB;
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  // Opened under 32 MiB: windows of 1 MiB. Then 1 GiB: windows of 32 MiB, filled by 64 KiB writes.
  await initStore(dir, { volumes: [{ name: 'v', size }], window: 'count:65536', capacity: String(32 * MiB), clock });
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  expect(store.limits.windowBytesMax).toBe(MiB);
  const { readConfig, writeConfig } = await import('../../src/config.js');
  const { nodeStorage } = await import('../../src/storage/node-storage.js');
  await writeConfig(nodeStorage, dir, { ...readConfig(nodeStorage, dir), capacity: String(1024 * MiB) });
  expect(store.reloadConfig()).toBe(true);
  expect(store.limits.windowBytesMax).toBe(32 * MiB);
  const model = new Model({ v: size });
  const rand = prng(5);
  for (let i = 1; i <= 1024; i++) {
    const data = randomBytes(rand, 64 * 1024);
    const offset = (i - 1) * 64 * 1024;
    model.add({ seq: i, volume: 'v', offset, data, time: clock.now() });
    await store.write('v', offset, data);
  }
  await store.settle();
  expect(store.log().some((e) => e.bytesWritten > 16 * MiB)).toBe(true);
  const view = store.history.view('v', 700);
  expect(view.read(0, size).equals(model.at('v', 700))).toBe(true);
  view.close();
  await store.close();
});
