// The transaction log once retention has retired history: one row per point the store still holds at
// a window end, each with its granularity — `writes` (the journal holds every write of the window),
// `window` (its end), a merged pack's tier (`hourly` here: one row for the windows it covers, figures
// summed) — and no row for windows dropped or inside a merged pack. The rows are exactly the held
// window ends: each restores to the model's volume, every other window end is refused naming the
// oldest point and the nearest held ones. A reader in another process prints the same log.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, ManualClock, openStoreReader, Store, type LogEntry, type RewindError } from '../../src/index.js';
import { StoreExports } from '../../src/serve/exports.js';
import { retiredHistory, VOLUME, VOLUME_BYTES, type RetiredHistory } from '../helpers/retired-history.js';

const END = Date.UTC(2026, 2, 10, 12, 30);
let h: RetiredHistory;
let log: LogEntry[];

beforeAll(async () => {
  h = await retiredHistory(END);
  log = h.store.log();
});

afterAll(async () => {
  await h?.store.close();
  if (h) fs.rmSync(path.dirname(h.dir), { recursive: true, force: true });
});

function refusal(seq: number): RewindError {
  try {
    h.store.history.view(VOLUME, { seq }).close();
  } catch (err) {
    return err as RewindError;
  }
  throw new Error(`seq ${seq} should not be held`);
}

describe('log after retention', () => {
  it('has one row per retained point with its granularity', () => {
    expect(log.map((e) => [e.id, e.granularity, e.windows])).toEqual([
      [3, 'window', 1], // the end of the last dropped window: the oldest restorable point
      [6, 'hourly', 3],
      [9, 'hourly', 3],
      [12, 'hourly', 3],
      [13, 'window', 1],
      [14, 'window', 1],
      [15, 'writes', 1],
      [16, 'writes', 1],
    ]);
  });

  it('keeps the fields of a plain window, and sums a merged one over its windows', () => {
    for (const e of log) {
      const firstId = e.id - e.windows + 1;
      expect(e.firstSeq).toBe(h.windowEnd(firstId - 1) + 1);
      expect(e.lastSeq).toBe(h.windowEnd(e.id));
      expect(e.writes).toBe(4 * e.windows);
      expect(e.bytesWritten).toBe(4 * 4096 * e.windows);
      expect(e.t1).toBe(new Date(h.windowStart[firstId]).toISOString());
      expect(e.t2).toBe(new Date(h.windowStart[e.id] + 3000).toISOString());
      // The forward increment is the window's journal records: the pack holds none of it.
      expect(e.forwardBytes).toBe(0);
      expect(e.backwardBytes).toBeGreaterThan(0);
      expect(e.packBytes).toBeGreaterThan(e.backwardBytes);
      expect(e.changedBlocks).toBeGreaterThan(0);
    }
  });

  it('lists exactly the held window ends: each restores to the model, the others are refused', () => {
    const rows = new Set(log.map((e) => e.lastSeq));
    for (let id = 1; id <= 16; id++) {
      const seq = h.windowEnd(id);
      if (rows.has(seq)) {
        const view = h.store.history.view(VOLUME, { seq });
        try {
          expect(view.read(0, VOLUME_BYTES).equals(h.model.at(VOLUME, seq)), `volume after seq ${seq}`).toBe(true);
        } finally {
          view.close();
        }
      } else {
        expect(refusal(seq).code, `seq ${seq}`).toBe('TARGET_OUT_OF_RANGE');
      }
    }
    // Inside a window held as `writes`, every write is a point; inside a `window` row, none is.
    const view = h.store.history.view(VOLUME, { seq: h.windowEnd(15) - 2 });
    expect(view.read(0, VOLUME_BYTES).equals(h.model.at(VOLUME, h.windowEnd(15) - 2))).toBe(true);
    view.close();
    expect(refusal(h.windowEnd(13) - 1).code).toBe('TARGET_OUT_OF_RANGE');
  });

  it('refuses a window end inside a merged pack naming the oldest point and the nearest held ones', () => {
    const err = refusal(h.windowEnd(4));
    const at = (id: number) => `seq ${h.windowEnd(id)} (${new Date(h.windowStart[id] + 3000).toISOString()})`;
    expect(err.message).toContain(`seq ${h.windowEnd(4)} is no longer held`);
    expect(err.message).toContain(`the oldest restorable point is ${at(3)}`);
    expect(err.message).toContain(`before it: ${at(3)}; after it: ${at(6)}`);
    expect(h.store.history.resolve({ seq: h.windowEnd(4) }, { nearest: true })).toBe(h.windowEnd(3));
    // An NBD view of it is refused, with the same message for the client's error text.
    const exports = new StoreExports(h.store);
    expect(() => exports.open(`${VOLUME}@seq=${h.windowEnd(4)}`)).toThrow(`export "${VOLUME}@seq=${h.windowEnd(4)}": ${err.message}`);
    exports.open(`${VOLUME}@seq=${h.windowEnd(6)}`).close();
  });

  it('is the same from a reader in another process', async () => {
    const reader = await openStoreReader(h.dir, { clock: h.clock });
    try {
      expect(reader.log()).toEqual(log);
    } finally {
      reader.close();
    }
  });

  it('on a store that keeps everything, has one `writes` row per window, as the index does', async () => {
    const dir = path.join(path.dirname(h.dir), 'all');
    const clock = new ManualClock(END);
    await initStore(dir, { volumes: [{ name: VOLUME, size: VOLUME_BYTES }], window: 'count:4', clock });
    const store = await Store.open(dir, { clock, threads: 1, autoTick: false });
    try {
      for (let i = 0; i < 10; i++) await store.write(VOLUME, i * 4096, Buffer.alloc(4096, i + 1));
      await store.settle();
      expect(store.log().map((e) => [e.id, e.firstSeq, e.lastSeq, e.writes, e.granularity, e.windows])).toEqual([
        [1, 1, 4, 4, 'writes', 1],
        [2, 5, 8, 4, 'writes', 1],
        [3, 9, 10, 2, 'writes', 1],
      ]);
    } finally {
      await store.close();
    }
  });
});
