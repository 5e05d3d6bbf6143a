// Leases: a point a reader is reading stays held while it reads, in the writer's own process (a view)
// and in another process (a lease file the writer reads); once the lease ends, the lifecycle retires
// it as the policy says. Leases of processes that are gone do not hold anything.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { initStore, ManualClock, openStoreReader, Store } from '../../src/index.js';
import { Model } from '../helpers/model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MIN = 60_000;
const SIZE = 64 * 1024;

/** Sixteen windows of two writes, one minute apart, with a policy that keeps one point per hour after 2 minutes. */
async function storeWithHistory() {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-lease-'));
  dirs.push(dir);
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 10));
  await initStore(dir, { volumes: [{ name: 'v', size: SIZE }], window: 'count:2', retain: 'windows:2m,hourly:1d', clock });
  // Small journal segments, so retiring the journal of old windows is possible at all.
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false, autoLifecycle: false, limits: { segmentBytesMax: 16 * 1024 } });
  const model = new Model({ v: SIZE });
  for (let i = 0; i < 32; i++) {
    clock.advance(MIN / 2);
    const data = Buffer.alloc(4096, i + 1);
    const offset = (i % 16) * 4096;
    model.add({ seq: i + 1, volume: 'v', offset, data, time: clock.now() });
    await store.write('v', offset, data);
  }
  await store.settle();
  clock.advance(60 * MIN); // every window is past the windows tier and its hour is over: one point per hour
  return { dir, clock, store, model };
}

it('keeps a point a view in the writer reads, and retires it once the view is closed', async () => {
  const { store, model } = await storeWithHistory();
  const view = store.history.view('v', 10);
  await store.consolidate();
  expect(view.read(0, SIZE).equals(model.at('v', 10))).toBe(true);
  const again = store.history.view('v', 10);
  expect(again.read(0, SIZE).equals(model.at('v', 10))).toBe(true);
  view.close();
  again.close();
  await store.consolidate();
  expect(() => store.history.view('v', 10)).toThrow(/no longer held/);
  await store.close();
});

it('keeps a point a reader in another process leases, and retires it once the lease ends', async () => {
  const { dir, store, model } = await storeWithHistory();
  const reader = await openStoreReader(dir);
  const view = reader.history.view('v', 10);
  expect(readdirSync(join(dir, 'leases')).filter((n) => n.endsWith('.lease'))).toHaveLength(1);
  await store.consolidate();
  // Still held for the reader, and for the writer too (the lease holds it for everyone).
  expect(view.read(0, SIZE).equals(model.at('v', 10))).toBe(true);
  const w = store.history.view('v', 10);
  expect(w.read(0, SIZE).equals(model.at('v', 10))).toBe(true);
  w.close();
  view.close();
  expect(readdirSync(join(dir, 'leases')).filter((n) => n.endsWith('.lease'))).toHaveLength(0);
  await store.consolidate();
  expect(() => store.history.view('v', 10)).toThrow(/no longer held/);
  expect(() => reader.history.view('v', 10)).toThrow(/no longer held/);
  reader.close();
  await store.close();
});

it('ignores and removes the lease of a process that is gone', async () => {
  const { dir, store } = await storeWithHistory();
  mkdirSync(join(dir, 'leases'), { recursive: true });
  // A pid far above any the kernel hands out (pid_max is at most 2^22).
  writeFileSync(join(dir, 'leases', '99999999-1.lease'), JSON.stringify({ seq: 10, pid: 99999999 }));
  await store.consolidate();
  expect(() => store.history.view('v', 10)).toThrow(/no longer held/);
  expect(readdirSync(join(dir, 'leases'))).toEqual([]);
  await store.close();
});
