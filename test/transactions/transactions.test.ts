// The transaction index promises: entries appended by a writer read back exactly after a reopen, by
// a writer or a reader; findBySeq finds the window holding a sequence number and firstEndingAfter
// the first window ending after a time; a torn last entry (a crash mid-append) is cut off by a
// writer and ignored by a reader; a bad entry followed by good ones is damage — a writer refuses to
// open (CORRUPT, naming the file and position) and a reader reports it in `damage` — never skipped.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RewindError } from '../../src/errors.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { encodeTxEntry, TransactionIndex, TX_ENTRY_BYTES, TX_FILE, type TxEntry } from '../../src/transactions/transactions.js';

let dir: string;
let file: string;
const opened: TransactionIndex[] = [];

async function open(writable: boolean): Promise<TransactionIndex> {
  const idx = await TransactionIndex.open(nodeStorage, dir, writable);
  opened.push(idx);
  return idx;
}

/** Entries for windows of the given sizes, consecutive in seq, 1 s apart. */
function entries(sizes: number[]): TxEntry[] {
  const out: TxEntry[] = [];
  let seq = 1;
  sizes.forEach((n, i) => {
    out.push({
      id: i + 1, firstSeq: seq, lastSeq: seq + n - 1, t1: 1_800_000_000_000 + i * 1000, t2: 1_800_000_000_000 + i * 1000 + 500,
      writes: n, sections: 1 + (i % 3), bytesWritten: 4096 * n, changedBlocks: n + i, packBytes: 1000 + i, fwdBytes: 600 + i, bwdBytes: 300 + i,
      journal: { segment: 1 + Math.floor(i / 2), position: 64 + 1000 * i }, packCrc: (0x9e3779b9 * (i + 1)) >>> 0,
    });
    seq += n;
  });
  return out;
}

async function writeEntries(es: TxEntry[]): Promise<void> {
  const idx = await open(true);
  for (const e of es) await idx.append(e);
  idx.close();
}

function flipByte(position: number): void {
  const b = fs.readFileSync(file);
  b[position] ^= 0x10;
  fs.writeFileSync(file, b);
}

async function openError(writable: boolean): Promise<unknown> {
  return TransactionIndex.open(nodeStorage, dir, writable).then((idx) => { opened.push(idx); return null; }, (e: unknown) => e);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-tx-'));
  file = path.join(dir, TX_FILE);
});

afterEach(() => {
  for (const idx of opened.splice(0)) idx.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('append and reopen', () => {
  it('reads back every field of every entry, as a writer and as a reader', async () => {
    const es = entries([3, 1, 5, 2, 7]);
    await writeEntries(es);
    expect(fs.statSync(file).size).toBe(5 * TX_ENTRY_BYTES);
    for (const writable of [true, false]) {
      const idx = await open(writable);
      expect(idx.entries).toEqual(es);
      expect(idx.damage).toBeNull();
      expect(idx.last).toEqual(es[4]);
      expect(idx.appliedSeq).toBe(18);
      idx.close();
    }
  });

  it('starts empty (appliedSeq 0), and a reader of a missing index sees no entries', async () => {
    const r = await open(false);
    expect(r.entries).toEqual([]);
    expect(r.appliedSeq).toBe(0);
    expect(r.last).toBeUndefined();
    const w = await open(true);
    expect(w.entries).toEqual([]);
    expect(w.appliedSeq).toBe(0);
  });

  it('continues appending after a reopen', async () => {
    const es = entries([2, 2, 2]);
    await writeEntries(es.slice(0, 2));
    const w = await open(true);
    await w.append(es[2]);
    w.close();
    expect((await open(false)).entries).toEqual(es);
  });

  it('a reader sees entries a writer appends after the reader opened (refresh)', async () => {
    const es = entries([1, 2, 3]);
    const w = await open(true);
    await w.append(es[0]);
    const r = await open(false);
    expect(r.entries).toHaveLength(1);
    await w.append(es[1]);
    await w.append(es[2]);
    r.refresh();
    expect(r.entries).toEqual(es);
  });

  it('refuses an append that breaks the id or seq order', async () => {
    const es = entries([2, 2]);
    const w = await open(true);
    await w.append(es[0]);
    await expect(w.append({ ...es[1], id: 3 })).rejects.toThrow(/consecutive/);
    await expect(w.append({ ...es[1], firstSeq: es[1].firstSeq + 1 })).rejects.toThrow(/starts right after/);
    expect(fs.statSync(file).size).toBe(TX_ENTRY_BYTES);
  });
});

describe('lookups', () => {
  // Windows: 1 = seq 1..3, 2 = seq 4..4, 3 = seq 5..9, 4 = seq 10..11; t2 = base + 500 + 1000 * i.
  const es = entries([3, 1, 5, 2]);
  const T = 1_800_000_000_000;

  it('findBySeq returns the entry whose window holds the seq, or undefined', async () => {
    await writeEntries(es);
    const idx = await open(false);
    const idOf = (seq: number) => idx.findBySeq(seq)?.id;
    expect([0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 1000].map(idOf)).toEqual([undefined, 1, 1, 1, 2, 3, 3, 3, 4, 4, undefined, undefined]);
  });

  it('firstEndingAfter returns the index of the first entry with t2 strictly after the time', async () => {
    await writeEntries(es);
    const idx = await open(false);
    expect(idx.firstEndingAfter(T - 1)).toBe(0);
    expect(idx.firstEndingAfter(T + 499)).toBe(0);
    expect(idx.firstEndingAfter(T + 500)).toBe(1); // window 1 ends at exactly this time
    expect(idx.firstEndingAfter(T + 1499)).toBe(1);
    expect(idx.firstEndingAfter(T + 1500)).toBe(2);
    expect(idx.firstEndingAfter(T + 3500)).toBe(4); // none: entries.length
    expect(idx.firstEndingAfter(T + 1e9)).toBe(4);
  });

  it('lookups on an empty index find nothing', async () => {
    const idx = await open(true);
    expect(idx.findBySeq(1)).toBeUndefined();
    expect(idx.firstEndingAfter(0)).toBe(0);
  });
});

describe('torn last entry', () => {
  const es = entries([2, 3, 1, 4]);

  it('a writer ignores a partly written last entry (shorter than an entry) and appends in its place', async () => {
    await writeEntries(es.slice(0, 3));
    fs.appendFileSync(file, Buffer.alloc(60, 0xee)); // a fragment that is not the entry to come
    const w = await open(true);
    expect(w.entries).toEqual(es.slice(0, 3));
    expect(w.damage).toBeNull();
    expect(w.appliedSeq).toBe(6);
    await w.append(es[3]);
    w.close();
    expect(fs.statSync(file).size).toBe(4 * TX_ENTRY_BYTES); // the fragment is overwritten, not kept
    const r = await open(false);
    expect(r.entries).toEqual(es);
    expect(r.damage).toBeNull();
  });

  it('a writer cuts off a full-size last entry whose checksum fails (torn within the entry)', async () => {
    await writeEntries(es.slice(0, 3));
    const torn = encodeTxEntry(es[3]);
    torn.fill(0, 64); // the second half never reached the disk
    fs.appendFileSync(file, torn);
    const w = await open(true);
    expect(w.entries).toEqual(es.slice(0, 3));
    expect(fs.statSync(file).size).toBe(3 * TX_ENTRY_BYTES);
  });

  it('a reader stops before a torn last entry, reports no damage and changes nothing', async () => {
    await writeEntries(es.slice(0, 3));
    const torn = encodeTxEntry(es[3]);
    torn.fill(0, 64);
    fs.appendFileSync(file, torn);
    const r = await open(false);
    expect(r.entries).toEqual(es.slice(0, 3));
    expect(r.damage).toBeNull();
    expect(fs.statSync(file).size).toBe(4 * TX_ENTRY_BYTES);

    fs.truncateSync(file, 3 * TX_ENTRY_BYTES + 100); // partly written: shorter than an entry
    const r2 = await open(false);
    expect(r2.entries).toEqual(es.slice(0, 3));
    expect(r2.damage).toBeNull();
  });
});

describe('damage', () => {
  const es = entries([2, 3, 1, 4]);

  it.each([
    ['magic', 1 * TX_ENTRY_BYTES + 0, /bad entry magic/],
    ['a field', 1 * TX_ENTRY_BYTES + 20, /entry checksum mismatch/],
    ['the checksum', 1 * TX_ENTRY_BYTES + 125, /entry checksum mismatch/],
  ])('a flipped byte in %s of an entry followed by good ones: the writer refuses (CORRUPT), the reader reports it', async (_what, at, reason) => {
    await writeEntries(es);
    flipByte(at);
    const err = await openError(true);
    expect(err).toBeInstanceOf(RewindError);
    expect((err as RewindError).code).toBe('CORRUPT');
    expect((err as RewindError).message).toContain(`${file} at byte ${TX_ENTRY_BYTES}`);
    expect((err as RewindError).message).toMatch(reason);
    expect(fs.statSync(file).size).toBe(4 * TX_ENTRY_BYTES); // not truncated away

    const r = await open(false);
    expect(r.entries).toEqual(es.slice(0, 1)); // never skipped over
    expect(r.damage).toMatchObject({ position: TX_ENTRY_BYTES });
    expect(r.damage!.reason).toMatch(reason);
  });

  it('an entry with a valid checksum but a broken chain (seq gap) is damage too', async () => {
    const bad = entries([2, 3, 1, 4]);
    const buf = Buffer.concat([encodeTxEntry(bad[0]), encodeTxEntry({ ...bad[1], firstSeq: bad[1].firstSeq + 1 }), encodeTxEntry(bad[2]), encodeTxEntry(bad[3])]);
    fs.writeFileSync(file, buf);
    const err = await openError(true);
    expect((err as RewindError).code).toBe('CORRUPT');
    expect((err as RewindError).message).toMatch(/transaction 2 starts at seq 4, not right after 2/);
    const r = await open(false);
    expect(r.entries).toHaveLength(1);
    expect(r.damage).toMatchObject({ position: TX_ENTRY_BYTES });
  });

  it('an out-of-order transaction id is damage', async () => {
    const es2 = entries([1, 1, 1]);
    fs.writeFileSync(file, Buffer.concat([encodeTxEntry(es2[0]), encodeTxEntry({ ...es2[1], id: 5 }), encodeTxEntry(es2[2])]));
    const r = await open(false);
    expect(r.damage?.reason).toMatch(/transaction id 5 where 2 was expected/);
  });
});
