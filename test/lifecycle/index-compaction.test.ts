// A store compacts its transaction index as retention drops windows: the index then starts at the
// window ending at the oldest point held, every id stays what it was and new windows go on from the
// newest; `status().transactions` still counts every window ever applied; `--tx` of a compacted
// window is refused as a point no longer held, naming the oldest one; the log, views, verify and a
// reopened writer see the same history; and a reader that opened before the compaction follows it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initStore, ManualClock, openStoreReader, RewindError, Store } from '../../src/index.js';
import { TX_ENTRY_BYTES } from '../../src/transactions/transactions.js';
import { verifyStore } from '../../src/verify/verify.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { Model, prng } from '../helpers/model.js';

const MINUTE = 60_000;
const BLOCK = 4096;
const VOLUME_BYTES = 16 * BLOCK;
/** Windows of two writes, one a minute; ten minutes of window ends kept. */
const RETAIN = 'windows:10m';
const COMPACT_MIN = 8;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('index compaction in a store', () => {
  it('keeps ids, the held points and the count of transactions; refuses a compacted --tx; a reader follows', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-idxc-'));
    dirs.push(root);
    const dir = path.join(root, 'store');
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    await initStore(dir, { volumes: [{ name: 'a', size: VOLUME_BYTES }], window: 'count:2', retain: RETAIN, clock });
    const options = { clock, threads: 1, autoTick: false, limits: { indexCompactEntriesMin: COMPACT_MIN } };
    let store = await Store.open(dir, options);
    const model = new Model({ a: VOLUME_BYTES });
    const rand = prng(11);
    const writeWindows = async (n: number) => {
      for (let w = 0; w < n; w++) {
        for (let i = 0; i < 2; i++) {
          const offset = Math.floor(rand() * 16) * BLOCK;
          const data = Buffer.alloc(BLOCK, Math.floor(rand() * 256));
          const time = clock.now();
          const seq = await store.write('a', offset, data);
          model.add({ seq, volume: 'a', offset, data, time });
        }
        await store.drain();
        clock.advance(MINUTE);
      }
      await store.consolidate();
    };
    const indexFile = path.join(dir, 'index', 'transactions.idx');

    await writeWindows(4);
    const reader = await openStoreReader(dir, { clock });
    try {
      expect(reader.history.index.entries[0].id).toBe(1);
      await writeWindows(36);
      const index = store.history.index;
      const first = index.entries[0];
      expect(first.id).toBeGreaterThan(COMPACT_MIN);
      expect(index.last!.id).toBe(40);
      expect(index.entries.map((e) => e.id)).toEqual(Array.from({ length: 40 - first.id + 1 }, (_, i) => first.id + i));
      expect(fs.statSync(indexFile).size).toBe(index.entries.length * TX_ENTRY_BYTES);

      // The oldest point held is the end of a window the index keeps, with its time; the windows kept
      // before it are fewer than a compaction waits for.
      const status = store.status();
      expect(status.transactions).toBe(40);
      const oldest = index.entries.find((e) => e.lastSeq === status.oldestRestorable.seq)!;
      expect(oldest).toBeDefined();
      expect(status.oldestRestorable.time).toBe(new Date(oldest.t2).toISOString());
      expect(oldest.id - first.id).toBeLessThan(Math.max(COMPACT_MIN, index.entries.length / 4));
      expect(store.log()[0]).toMatchObject({ id: oldest.id, lastSeq: oldest.lastSeq, granularity: 'window' });
      expect(store.history.resolve({ tx: oldest.id })).toBe(oldest.lastSeq);
      const view = store.history.view('a', { tx: oldest.id });
      expect(view.read(0, VOLUME_BYTES).equals(model.at('a', oldest.lastSeq))).toBe(true);
      view.close();

      // A transaction compacted out of the index is a point no longer held, as one still in it but dropped.
      for (const tx of [1, first.id - 1, first.id, oldest.id - 1].filter((t) => t < oldest.id)) {
        let err: unknown = null;
        try {
          store.history.resolve({ tx });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(RewindError);
        expect((err as RewindError).code).toBe('TARGET_OUT_OF_RANGE');
        expect((err as RewindError).message).toContain(`transaction ${tx} is no longer held`);
        expect((err as RewindError).message).toContain(`the oldest restorable point is seq ${oldest.lastSeq} (${new Date(oldest.t2).toISOString()})`);
      }
      expect(() => store.history.resolve({ tx: 41 })).toThrow(/transaction 41 does not exist \(transactions are 1\.\.40\)/);

      // The reader opened before any compaction reads the new index at its next look (it stays at
      // the writes it saw when it opened: seq 8).
      expect(reader.status()).toMatchObject({ transactions: 40, lastSeq: 8, oldestRestorable: status.oldestRestorable });
      expect(reader.history.index.entries).toEqual(index.entries);
      expect(reader.log()).toEqual(store.log());
      expect(() => reader.history.resolve({ tx: 1 })).toThrow(/transaction 1 is no longer held/);
      expect(reader.history.index.findBySeq(oldest.lastSeq)).toEqual(oldest);

      // Reopened, the writer goes on from the newest id.
      await store.close();
      store = await Store.open(dir, options);
      expect(store.history.index.entries[0].id).toBe(first.id);
      await writeWindows(1);
      expect(store.history.index.last!.id).toBe(41);
      expect(store.status().transactions).toBe(41);
      expect(reader.status().transactions).toBe(41);
      await store.close();

      const report = verifyStore({ storage: nodeStorage, dir, blockSize: BLOCK, volumes: reader.history.volumes, index: reader.history.index, journal: reader.history.journal });
      expect(report.problems).toEqual([]);
      expect(report.checked.transactions).toBe(reader.history.index.entries.length);
    } finally {
      reader.close();
      await store.close();
    }
  });
});
