// What the tier promises, against the reference model and a local restore: history shipped by the
// uploader restores from the tier alone byte for byte — at window ends, inside windows (journal
// replayed), and after the newest base (journal replay from the base) — and the store keeps every
// file the tier does not hold yet.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, Store } from '../../src/index.js';
import { storeShipSource } from '../../src/tier/ship-source.js';
import { TierReader } from '../../src/tier/tier-reader.js';
import { newestPoint } from '../../src/tier/restore-plan.js';
import { TierUploader } from '../../src/tier/uploader.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { MemoryObjectStore } from './memory-store.js';

const SIZE = 256 * 1024;
const B = 4096;

let dir: string;
let store: Store;
let up: TierUploader;
const tier = new MemoryObjectStore();
const model = new Model({ v: SIZE, w: 64 * 1024 });
const windowEnds: number[] = [];
const rand = prng(1414);

async function writeWindows(n: number): Promise<void> {
  for (let w = 0; w < n; w++) {
    const writes = 1 + Math.floor(rand() * 5);
    for (let k = 0; k < writes; k++) {
      const volume = rand() < 0.8 ? 'v' : 'w';
      const size = volume === 'v' ? SIZE : 64 * 1024;
      const len = rand() < 0.4 ? B * (1 + Math.floor(rand() * 3)) : 1 + Math.floor(rand() * 5000);
      const offset = Math.floor(rand() * (size - len + 1));
      const data = rand() < 0.1 ? Buffer.alloc(len) : randomBytes(rand, len);
      const seq = await store.write(volume, offset, data);
      model.add({ seq, volume, offset, data, time: 0 });
    }
    store.markWindow();
    windowEnds.push(store.lastSeq);
  }
  await store.settle();
}

async function shipAll(): Promise<void> {
  while (await up.pass());
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-tier-ship-'));
  await initStore(dir, { volumes: [{ name: 'v', size: SIZE }, { name: 'w', size: 64 * 1024 }], blockSize: B, window: 'marker' });
  // Small segments, so the journal seals (and ships) often.
  store = await Store.open(dir, { threads: 1, limits: { segmentBytesMax: 64 * 1024 }, historyHold: () => up.hold() });
  up = new TierUploader(tier, storeShipSource(store), { storeId: 'test-store', dir, retain: null, baseAfterBytes: 512 * 1024 });
  await writeWindows(30);
  await shipAll();
  await writeWindows(40);
  await shipAll();
  await writeWindows(10);
  await shipAll();
}, 120_000);

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('shipping', () => {
  it('commits a manifest listing every object with its SHA-256, and the objects are there', () => {
    const m = up.committed!;
    expect(m.serial).toBeGreaterThan(0);
    expect(m.bases.length).toBeGreaterThanOrEqual(2);
    expect(m.packs.at(-1)!.lastSeq).toBe(store.appliedSeq);
    for (const o of [...m.packs, ...m.segments, m.index!]) expect(tier.objects.get(o.key)?.byteLength).toBe(o.bytes);
    expect(tier.objects.has('manifest.json')).toBe(true);
  });

  it('reports no backlog once everything is shipped, and holds what is not', async () => {
    expect(up.backlog().bytes).toBe(0);
    expect(up.backlog().oldestUnshippedSeq).toBeNull();
    await writeWindows(3);
    const b = up.backlog();
    expect(b.bytes).toBeGreaterThan(0);
    // The three new windows' packs, and a segment sealed meanwhile (it may start before them).
    expect(b.oldestUnshippedSeq).toBeLessThanOrEqual(windowEnds[windowEnds.length - 4] + 1);
    expect(up.hold().packsFrom).toBe(windowEnds[windowEnds.length - 4] + 1);
    expect(up.hold().segmentsFrom).toBe(up.committed!.segments.at(-1)!.lastSeq + 1);
    await shipAll();
    expect(up.backlog().bytes).toBe(0);
  });
});

describe('restore from the tier alone', () => {
  const restoreBoth = async (seq: number) => {
    const out = join(dir, `tier-${seq}.img`);
    const reader = await TierReader.open(tier);
    try {
      const r = await reader.restore('v', { seq }, out);
      expect(r.seq).toBe(seq);
    } finally {
      reader.close();
    }
    const local = join(dir, `local-${seq}.img`);
    await store.history.restore('v', { seq }, local);
    return { tier: readFileSync(out), local: readFileSync(local) };
  };

  it('equals the model and a local restore at window ends, inside windows and at 0', async () => {
    const m = up.committed!;
    const newestBase = m.bases.at(-1)!.seq;
    const targets = [0, windowEnds[0], windowEnds[5] - 1, windowEnds[20], windowEnds[29] + 1, windowEnds[50] - 2, newestBase];
    for (const seq of targets) {
      const r = await restoreBoth(seq);
      expect(r.tier.equals(model.at('v', seq)), `seq ${seq} equals the model`).toBe(true);
      expect(r.tier.equals(r.local), `seq ${seq} equals a local restore`).toBe(true);
    }
  });

  it('reaches points after the newest base by replaying the journal shipped after it', async () => {
    // Windows more until the tier holds sealed journal past its newest base (a window's pack may
    // make a new base due instead; the next window then goes past it).
    let m = up.committed!;
    for (let tries = 0; tries < 40 && newestPoint(m) <= m.bases.at(-1)!.seq; tries++) {
      await writeWindows(1);
      await shipAll();
      m = up.committed!;
    }
    const base = m.bases.at(-1)!.seq;
    const newest = newestPoint(m);
    expect(newest).toBeGreaterThan(base);
    for (const seq of [base + 1, Math.floor((base + newest) / 2), newest]) {
      const r = await restoreBoth(seq);
      expect(r.tier.equals(model.at('v', seq)), `seq ${seq} equals the model`).toBe(true);
      expect(r.tier.equals(r.local), `seq ${seq} equals a local restore`).toBe(true);
    }
  });

  it('restores by time and by transaction the same as by seq', async () => {
    const reader = await TierReader.open(tier);
    try {
      const r = await reader.restore('w', { tx: 12 }, join(dir, 'tx.img'));
      expect(r.seq).toBe(windowEnds[11]);
      expect(readFileSync(join(dir, 'tx.img')).equals(model.at('w', windowEnds[11]))).toBe(true);
    } finally {
      reader.close();
    }
  });

  it('fails naming a damaged object, while restores that do not need it still work', async () => {
    const m = up.committed!;
    const victim = m.packs[3];
    const good = tier.objects.get(victim.key)!;
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0xff;
    tier.objects.set(victim.key, bad);
    try {
      const reader = await TierReader.open(tier);
      try {
        await expect(reader.restore('v', { seq: victim.firstSeq - 1 }, join(dir, 'bad.img'))).rejects.toThrow(new RegExp(`${victim.key}.*SHA-256 mismatch`));
        const after = m.bases.at(-1)!.seq;
        await reader.restore('v', { seq: after }, join(dir, 'good.img'));
        expect(readFileSync(join(dir, 'good.img')).equals(model.at('v', after))).toBe(true);
      } finally {
        reader.close();
      }
    } finally {
      tier.objects.set(victim.key, good);
    }
  });
});
