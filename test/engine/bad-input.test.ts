// Bad input gets a clear error naming what was wrong, and changes nothing: not the journal, not
// production, not the history.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store, RewindError, openStoreReader, LIMITS } from '../../src/index.js';

let dir: string;
let store: Store;
const clock = new ManualClock(Date.UTC(2026, 0, 1));

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-bad-'));
  await initStore(dir, { volumes: [{ name: 'a', size: 1 << 20 }, { name: 'b', size: 1 << 20 }], window: 'count:4', clock });
  store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  await store.write('a', 0, Buffer.alloc(4096, 1));
  await store.flush();
});

afterEach(async () => {
  await store?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function journalBytes(): number {
  return statSync(join(dir, 'journal', '0000000000000001-open.seg')).size;
}

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const err = await p.then(() => null, (e) => e);
  expect(err, 'expected a rejection').toBeInstanceOf(RewindError);
  expect((err as RewindError).code).toBe(code);
  expect((err as Error).message).toMatch(message);
}

describe('writes that are refused', () => {
  it('change nothing and name the problem', async () => {
    const before = { seq: store.lastSeq, journal: journalBytes(), prod: readFileSync(join(dir, 'volumes', 'a')) };
    await rejects(store.write('a', (1 << 20) - 10, Buffer.alloc(11)), 'OUT_OF_RANGE', /volume "a".*1048566\+11.*1048576/);
    await rejects(store.write('a', 1 << 20, Buffer.alloc(1)), 'OUT_OF_RANGE', /ends past the volume size/);
    await rejects(store.write('a', 0, Buffer.alloc(0)), 'BAD_ARGUMENT', /length 0 must be at least 1 byte/);
    await rejects(store.write('a', -1, Buffer.alloc(1)), 'BAD_ARGUMENT', /offset -1/);
    await rejects(store.write('a', 1.5, Buffer.alloc(1)), 'BAD_ARGUMENT', /offset 1.5/);
    await rejects(store.write('nope', 0, Buffer.alloc(1)), 'UNKNOWN_VOLUME', /unknown volume "nope" \(volumes: a, b\)/);
    expect(store.lastSeq).toBe(before.seq);
    expect(journalBytes()).toBe(before.journal);
    expect(readFileSync(join(dir, 'volumes', 'a')).equals(before.prod)).toBe(true);
  });

  it('over the write size limit', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'rewind-empty-'));
    const none = await Store.open(empty, {}).catch((e) => e);
    rmSync(empty, { recursive: true, force: true });
    expect((none as RewindError).code).toBe('STORE_NOT_FOUND');
    await store.close();
    store = await Store.open(dir, { clock, threads: 1, autoTick: false, limits: { writeBytesMax: 8192 } });
    const seq = store.lastSeq;
    await rejects(store.write('b', 0, Buffer.alloc(8193)), 'LIMIT_EXCEEDED', /length 8193 exceeds the limit 8192/);
    expect(store.lastSeq).toBe(seq);
    expect(LIMITS.writeBytesMax).toBe(32 * 2 ** 20);
  });
});

describe('targets that do not exist', () => {
  it('are errors, not guesses', async () => {
    await store.settle();
    const h = store.history;
    expect(() => h.resolve({ seq: 2 })).toThrow(/seq 2 is after the newest write \(seq 1\)/);
    expect(() => h.resolve({ tx: 2 })).toThrow(/transaction 2 does not exist \(transactions are 1..1\)/);
    expect(() => h.resolve({ tx: 0 })).toThrow(/transaction id 0/);
    expect(() => h.resolve({ time: Date.UTC(2025, 0, 1) })).toThrow(/before the oldest retained point/);
    expect(() => h.resolve({ time: clock.now() + 60_000 })).toThrow(/in the future/);
    expect(() => h.view('zzz', 0)).toThrow(/unknown volume "zzz"/);
    expect(h.resolve({ seq: 0 })).toBe(0);
  });
});

describe('the store itself', () => {
  it('refuses a second writer while one is open', async () => {
    const second = await Store.open(dir, { clock, threads: 1 }).catch((e) => e);
    expect((second as RewindError).code).toBe('STORE_LOCKED');
    expect((second as Error).message).toMatch(/already open for writing in this process|being written by process/);
  });

  it('refuses writes once closed', async () => {
    await store.close();
    await rejects(store.write('a', 0, Buffer.alloc(1)), 'CLOSED', /is closed/);
  });

  it('reports a damaged configuration by file', async () => {
    await store.close();
    writeFileSync(join(dir, 'rewind.json'), '{"format": "rewind-store", "version": 1, ');
    const err = await openStoreReader(dir).catch((e) => e);
    expect((err as RewindError).code).toBe('CORRUPT');
    expect((err as Error).message).toContain('rewind.json');
    const w = await Store.open(dir, { clock }).catch((e) => e);
    expect((w as RewindError).code).toBe('CORRUPT');
  });

  it('reports a damaged index entry by file and position instead of skipping it', async () => {
    for (let i = 0; i < 12; i++) await store.write('b', i * 4096, Buffer.alloc(4096, i + 2));
    await store.close();
    const path = join(dir, 'index', 'transactions.idx');
    const idx = readFileSync(path);
    expect(idx.byteLength).toBeGreaterThanOrEqual(3 * 128);
    idx[128 + 20] ^= 0xff; // the second of at least three entries
    writeFileSync(path, idx);
    const err = await openStoreReader(dir).catch((e) => e);
    expect((err as RewindError).code).toBe('CORRUPT');
    expect((err as Error).message).toMatch(/transactions\.idx at byte 128/);
    const w = await Store.open(dir, { clock }).catch((e) => e);
    expect((w as RewindError).code).toBe('CORRUPT');
  });
});
