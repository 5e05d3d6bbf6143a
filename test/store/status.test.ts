// What a store says about its protection, through `store.status()` and `reader.status()` alike:
// the retention spec, the capacity (a size, or a share of the file system), the bytes of history
// files (exactly the files under journal/, increments/ and index/), the oldest restorable point,
// the required/achieved/predicted protection, the replica lag (the writes of the open window until
// it is applied), and the writes captured per volume.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initStore, ManualClock, openStoreReader, Store, type StatusReport } from '../../src/index.js';
import { readConfig, writeConfig } from '../../src/config.js';
import { nodeStorage } from '../../src/storage/node-storage.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function newStore(retain?: string, capacity?: string): Promise<{ dir: string; clock: ManualClock; T0: number }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-status-'));
  dirs.push(root);
  const dir = path.join(root, 'store');
  const T0 = Date.UTC(2026, 0, 1);
  const clock = new ManualClock(T0);
  await initStore(dir, { volumes: [{ name: 'a', size: 64 * 1024 }, { name: 'b', size: 32 * 1024 }], window: 'time:1h', clock });
  const config = readConfig(nodeStorage, dir);
  await writeConfig(nodeStorage, dir, { ...config, retain, capacity });
  return { dir, clock, T0 };
}

/** Bytes of every file under journal/, increments/ and index/, as the file system says. */
function historyFileBytes(dir: string): number {
  let total = 0;
  for (const sub of ['journal', 'increments', 'index']) {
    for (const name of fs.readdirSync(path.join(dir, sub))) total += fs.statSync(path.join(dir, sub, name)).size;
  }
  return total;
}

function expectShape(s: StatusReport): void {
  expect(typeof s.retention).toBe('string');
  expect(s.capacityBytes === null || Number.isSafeInteger(s.capacityBytes)).toBe(true);
  expect(Number.isSafeInteger(s.historyBytes)).toBe(true);
  expect(Number.isSafeInteger(s.oldestRestorable.seq)).toBe(true);
  expect(Number.isFinite(Date.parse(s.oldestRestorable.time))).toBe(true);
  for (const k of ['requiredSeconds', 'predictedSeconds'] as const) expect(s.protection[k] === null || Number.isFinite(s.protection[k])).toBe(true);
  expect(Number.isFinite(s.protection.achievedSeconds)).toBe(true);
  expect(Number.isSafeInteger(s.replicaLag.writes)).toBe(true);
  expect(Number.isSafeInteger(s.replicaLag.bytes)).toBe(true);
  expect(Number.isFinite(s.replicaLag.seconds)).toBe(true);
  expect(s.consolidationBacklogBytes).toBe(0);
  // One JSON document: nothing that JSON cannot carry (no NaN, Infinity or undefined).
  expect(JSON.parse(JSON.stringify(s))).toEqual(s);
}

describe('status: protection figures', () => {
  it('reports retention, capacity, history bytes, oldest point, protection and replica lag; the reader agrees', async () => {
    const { dir, clock, T0 } = await newStore('writes:1h,daily:7d', '1G');
    const store = await Store.open(dir, { clock, threads: 1 });
    try {
      const sizes = [1000, 3000, 500];
      for (const [i, n] of sizes.entries()) {
        clock.advance(1000);
        await store.write('a', i * 4096, Buffer.alloc(n, i + 1));
      }
      await store.settle(); // tx 1: seq 1..3
      // The open window, not closed (time:1h, no timer): two writes captured but not applied.
      clock.advance(5000);
      const tOpen = clock.now();
      await store.write('b', 0, Buffer.alloc(2048, 7));
      clock.advance(2000);
      await store.write('a', 100, Buffer.alloc(300, 8));
      await store.flush();
      clock.advance(3000);

      const s = store.status();
      expectShape(s);
      expect(s).toMatchObject({
        lastSeq: 5, appliedSeq: 3, transactions: 1,
        retention: 'writes:1h,daily:7d', capacityBytes: 2 ** 30,
        oldestRestorable: { seq: 0, time: new Date(T0).toISOString() },
        replicaLag: { writes: 2, bytes: 2048 + 300, seconds: (clock.now() - tOpen) / 1000 },
        consolidationBacklogBytes: 0,
      });
      expect(s.historyBytes).toBe(historyFileBytes(dir));
      expect(s.historyBytes).toBeGreaterThan(1000 + 3000 + 500 + 2048 + 300);
      expect(s.protection.requiredSeconds).toBe(3600);
      expect(s.protection.achievedSeconds).toBe((clock.now() - T0) / 1000);
      // Every byte written so far is within the last minute: capacity over that growth.
      expect(s.protection.predictedSeconds).toBeGreaterThan(0);
      expect(s.protection.predictedSeconds).toBeLessThan(2 ** 30 / ((1000 + 3000 + 500 + 2048 + 300) / 60));
      expect(store.writeCounts()).toEqual([{ volume: 'a', writes: 4, bytes: 1000 + 3000 + 500 + 300 }, { volume: 'b', writes: 1, bytes: 2048 }]);

      // A reader in another process finds the same figures (the lag from the journal past the applied point).
      const reader = await openStoreReader(dir, { clock });
      try {
        const r = reader.status();
        expectShape(r);
        expect(r).toEqual(s);
      } finally {
        reader.close();
      }

      // Applied: no lag; the oldest point is still the store's beginning (every pack is kept).
      await store.settle();
      const after = store.status();
      expect(after.replicaLag).toEqual({ writes: 0, bytes: 0, seconds: 0 });
      expect(after.appliedSeq).toBe(5);
      expect(after.oldestRestorable).toEqual({ seq: 0, time: new Date(T0).toISOString() });
    } finally {
      await store.close();
    }
  });

  it('with no retention or capacity set: everything kept, no required protection, no capacity, no prediction', async () => {
    const { dir, clock } = await newStore();
    const store = await Store.open(dir, { clock, threads: 1 });
    try {
      clock.advance(1000);
      await store.write('a', 0, Buffer.alloc(4096, 1));
      const s = store.status();
      expectShape(s);
      expect(s).toMatchObject({ retention: 'all', capacityBytes: null, protection: { requiredSeconds: null, achievedSeconds: 1, predictedSeconds: null } });
      expect(s.replicaLag).toEqual({ writes: 1, bytes: 4096, seconds: 0 });
    } finally {
      await store.close();
    }
  });

  it('a capacity given as a share of the file system is resolved against its size', async () => {
    const { dir } = await newStore('windows:1d', '50%');
    const reader = await openStoreReader(dir);
    try {
      const st = fs.statfsSync(dir);
      const s = reader.status();
      expect(s.capacityBytes).toBe(Math.floor((st.blocks * st.bsize) / 2));
      expect(s.protection.requiredSeconds).toBe(86_400);
    } finally {
      reader.close();
    }
  });
});
