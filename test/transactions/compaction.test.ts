// Compaction of the transaction index promises: the entries of windows before the oldest point held go
// (the entry ending at that point stays, and so does the newest), every kept entry keeps its id, and
// ids go on from the newest; nothing happens until enough entries can go; appends made while a
// compaction runs wait for it and land in the new file; a reader in another process that read the old
// file reads the new one whole at its next refresh; what an interrupted compaction leaves (the
// temporary file) is removed when a writer opens the index, which is then the old one, whole.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RewindError } from '../../src/errors.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { encodeTxEntry, entryPosition, TransactionIndex, TX_ENTRY_BYTES, TX_FILE, TX_TMP_FILE, type TxEntry } from '../../src/transactions/transactions.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';

let dir: string;
let file: string;
let tmp: string;
const opened: TransactionIndex[] = [];

async function open(writable: boolean, storage: Storage = nodeStorage): Promise<TransactionIndex> {
  const idx = await TransactionIndex.open(storage, dir, writable);
  opened.push(idx);
  return idx;
}

/** `n` windows of two writes each (window i: seq 2i-1..2i), 1 s apart. */
function windows(n: number): TxEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1, firstSeq: 2 * i + 1, lastSeq: 2 * i + 2, t1: 1_800_000_000_000 + i * 1000, t2: 1_800_000_000_000 + i * 1000 + 500,
    writes: 2, sections: 1, bytesWritten: 8192, changedBlocks: 2, packBytes: 1000 + i, fwdBytes: 600, bwdBytes: 300,
    journal: { segment: 1, position: 64 + 200 * i }, packCrc: (0x9e3779b9 * (i + 1)) >>> 0,
  }));
}

/** The point after window `id` (its last write). */
const endOf = (id: number) => 2 * id;

async function writer(es: TxEntry[], storage: Storage = nodeStorage): Promise<TransactionIndex> {
  const w = await open(true, storage);
  for (const e of es) await w.append(e);
  return w;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-txc-'));
  file = path.join(dir, TX_FILE);
  tmp = path.join(dir, TX_TMP_FILE);
});

afterEach(() => {
  for (const idx of opened.splice(0)) idx.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('compact', () => {
  it('removes the windows before the oldest point held, keeping the one ending there and every id', async () => {
    const es = windows(12);
    const w = await writer(es);
    expect(await w.compact(endOf(5), 1)).toBe(4);
    expect(w.entries).toEqual(es.slice(4));
    expect(w.firstId).toBe(5);
    expect(w.nextId).toBe(13);
    expect(w.byId(4)).toBeUndefined();
    expect(w.byId(5)).toEqual(es[4]);
    expect(w.byId(12)).toEqual(es[11]);
    expect(w.byId(13)).toBeUndefined();
    expect(w.findBySeq(endOf(4))).toBeUndefined();
    expect(w.findBySeq(endOf(5))).toEqual(es[4]);
    expect(fs.statSync(file).size).toBe(8 * TX_ENTRY_BYTES);
    expect(fs.existsSync(tmp)).toBe(false);
    expect(entryPosition(w.entries, es[6])).toBe(2 * TX_ENTRY_BYTES);
    w.close();
    for (const writable of [true, false]) {
      const idx = await open(writable);
      expect(idx.entries).toEqual(es.slice(4));
      expect(idx.damage).toBeNull();
      expect(idx.appliedSeq).toBe(endOf(12));
      idx.close();
    }
  });

  it('does nothing until enough entries can go: at least the minimum, and a quarter of the index', async () => {
    const es = windows(12);
    const w = await writer(es);
    expect(await w.compact(endOf(5), 5)).toBe(0); // 4 could go, fewer than 5
    expect(await w.compact(endOf(3), 1)).toBe(0); // 2 of 12: under a quarter
    expect(w.entries).toEqual(es);
    expect(fs.statSync(file).size).toBe(12 * TX_ENTRY_BYTES);
    expect(await w.compact(endOf(4), 3)).toBe(3); // 3 of 12: a quarter
    expect(w.firstId).toBe(4);
  });

  it('always keeps the newest entry: it carries the next id', async () => {
    const es = windows(6);
    const w = await writer(es);
    expect(await w.compact(endOf(6) + 100, 1)).toBe(5);
    expect(w.entries).toEqual([es[5]]);
    expect(w.nextId).toBe(7);
    w.close();
    const again = await open(true);
    expect(again.nextId).toBe(7);
    expect(again.appliedSeq).toBe(endOf(6));
  });

  it('goes on appending after a compaction, with ids from the newest one, and compacts again', async () => {
    const es = windows(20);
    const w = await writer(es.slice(0, 8));
    expect(await w.compact(endOf(5), 1)).toBe(4);
    for (const e of es.slice(8, 14)) await w.append(e);
    await expect(w.append({ ...es[14], id: 11 })).rejects.toThrow(/consecutive/);
    expect(await w.compact(endOf(9), 1)).toBe(4);
    for (const e of es.slice(14)) await w.append(e);
    w.close();
    const r = await open(false);
    expect(r.entries).toEqual(es.slice(8));
    expect(fs.statSync(file).size).toBe(12 * TX_ENTRY_BYTES);
  });

  it('takes turns with appends: one in flight finishes first, one made meanwhile lands in the new file', async () => {
    const es = windows(10);
    const w = await writer(es.slice(0, 7));
    const order: string[] = [];
    const a8 = w.append(es[7]).then(() => order.push('append 8'));
    const c = w.compact(endOf(4), 1).then((n) => order.push(`compact ${n}`));
    const a9 = w.append(es[8]).then(() => order.push('append 9'));
    await Promise.all([a8, c, a9]);
    expect(order).toEqual(['append 8', 'compact 3', 'append 9']);
    await w.append(es[9]);
    expect(w.entries).toEqual(es.slice(3));
    w.close();
    expect((await open(false)).entries).toEqual(es.slice(3));
  });
});

describe('a reader across a compaction', () => {
  it('reads the new file whole at its next refresh', async () => {
    const es = windows(12);
    const w = await writer(es.slice(0, 8));
    const r = await open(false);
    expect(r.entries).toEqual(es.slice(0, 8));
    expect(await w.compact(endOf(5), 1)).toBe(4);
    await w.append(es[8]);
    r.refresh();
    expect(r.entries).toEqual(es.slice(4, 9));
    expect(r.firstId).toBe(5);
    await w.append(es[9]);
    r.refresh();
    expect(r.entries).toEqual(es.slice(4, 10));
    expect(r.damage).toBeNull();
  });

  it('notices the new file even when it has grown back to the size of the old one', async () => {
    const es = windows(16);
    const w = await writer(es.slice(0, 8));
    const r = await open(false);
    expect(await w.compact(endOf(5), 1)).toBe(4);
    for (const e of es.slice(8, 12)) await w.append(e);
    expect(fs.statSync(file).size).toBe(8 * TX_ENTRY_BYTES);
    r.refresh();
    expect(r.entries).toEqual(es.slice(4, 12));
  });
});

describe('an interrupted compaction', () => {
  it('a temporary file left over (torn) is removed when a writer opens the index, which is the old one, whole', async () => {
    const es = windows(8);
    (await writer(es)).close();
    fs.writeFileSync(tmp, Buffer.concat(es.slice(4).map(encodeTxEntry)).subarray(0, 300));
    const r = await open(false);
    expect(r.entries).toEqual(es);
    expect(fs.existsSync(tmp)).toBe(true); // a reader changes nothing
    const w = await open(true);
    expect(fs.existsSync(tmp)).toBe(false);
    expect(w.entries).toEqual(es);
    await w.append(windows(9)[8]);
    expect(w.nextId).toBe(10);
  });

  it('a complete temporary file left before the rename is removed too: the index stays the old one', async () => {
    const es = windows(8);
    (await writer(es)).close();
    fs.writeFileSync(tmp, Buffer.concat(es.slice(4).map(encodeTxEntry)));
    const w = await open(true);
    expect(fs.existsSync(tmp)).toBe(false);
    expect(w.entries).toEqual(es);
  });

  it('a write of the temporary file that fails leaves the index as it was, and no temporary file', async () => {
    const es = windows(10);
    const storage = new FaultyStorage();
    const w = await writer(es.slice(0, 8), storage);
    storage.fault = { path: /\.tmp$/, code: 'ENOSPC', partial: true, times: 1 };
    await expect(w.compact(endOf(5), 1)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(fs.existsSync(tmp)).toBe(false);
    expect(w.entries).toEqual(es.slice(0, 8));
    await w.append(es[8]);
    expect(await w.compact(endOf(5), 1)).toBe(4);
    await w.append(es[9]);
    w.close();
    expect((await open(false)).entries).toEqual(es.slice(4));
  });

  it('when syncing the directory after the rename fails, the next append syncs it before it counts', async () => {
    const es = windows(10);
    let syncs = 0;
    let failNext = false;
    const storage: Storage = Object.assign(Object.create(nodeStorage) as Storage, {
      syncDir: async (d: string) => {
        syncs++;
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        }
        return nodeStorage.syncDir(d);
      },
    });
    const w = await writer(es.slice(0, 8), storage);
    failNext = true;
    await expect(w.compact(endOf(5), 1)).rejects.toMatchObject({ code: 'EIO' });
    // The name stands for the new file: the index is the compacted one.
    expect(w.entries).toEqual(es.slice(4, 8));
    const before = syncs;
    await w.append(es[8]);
    expect(syncs).toBe(before + 1);
    await w.append(es[9]);
    expect(syncs).toBe(before + 1);
    w.close();
    expect((await open(false)).entries).toEqual(es.slice(4));
  });
});

describe('an index that starts past id 1', () => {
  it('is read as it is; a bad entry in it is reported at its place in the file', async () => {
    const es = windows(8).slice(3);
    fs.writeFileSync(file, Buffer.concat(es.map(encodeTxEntry)));
    const r = await open(false);
    expect(r.entries).toEqual(es);
    expect(r.firstId).toBe(4);
    r.close();
    fs.writeFileSync(file, Buffer.concat([encodeTxEntry(es[0]), encodeTxEntry({ ...es[1], id: 9 }), ...es.slice(2).map(encodeTxEntry)]));
    const err = await TransactionIndex.open(nodeStorage, dir, true).then((idx) => { opened.push(idx); return null; }, (e: unknown) => e);
    expect(err).toBeInstanceOf(RewindError);
    expect((err as RewindError).message).toContain(`${file} at byte ${TX_ENTRY_BYTES}`);
    expect((err as RewindError).message).toMatch(/transaction id 9 where 5 was expected/);
  });
});
