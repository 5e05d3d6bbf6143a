// verify on a store whose history the lifecycle has shaped: windows dropped by retention, runs of
// windows merged into one pack, journal segments retired. Such a store verifies clean; damage to
// what is left (a merged pack, the journal recovery needs) is still found and named; a pack left by
// an interrupted consolidation is only a note; `rewind verify` exits 0 or 1 accordingly. The layout
// rules are checked on bare seq ranges too.
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, ManualClock, nodeStorage, Store, type Storage } from '../../src/index.js';
import { readConfig } from '../../src/config.js';
import { JournalReader } from '../../src/journal/reader.js';
import { TransactionIndex, type TxEntry } from '../../src/transactions/transactions.js';
import { VolumeSet } from '../../src/volumes/volume-set.js';
import { alignPacks, layOutPacks } from '../../src/verify/pack-layout.js';
import { verifyStore, type VerifyReport } from '../../src/verify/verify.js';
import { prng, randomBytes } from '../helpers/model.js';

const BIN = fileURLToPath(new URL('../../bin/rewind.js', import.meta.url));
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const PACK = /^(\d{16})-(\d{16})\.pack$/;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** verify as `rewind verify` runs it on a store no writer has open. */
async function verifyDir(dir: string): Promise<VerifyReport> {
  const config = readConfig(nodeStorage, dir);
  const volumes = new VolumeSet(nodeStorage, dir, config, false);
  const journal = new JournalReader(nodeStorage, join(dir, 'journal'));
  const index = await TransactionIndex.open(nodeStorage, join(dir, 'index'), false);
  try {
    return verifyStore({ storage: nodeStorage, dir, blockSize: config.blockSize, volumes, index, journal });
  } finally {
    index.close();
    journal.closeFiles();
    volumes.close();
  }
}

/** `rewind verify` as a user runs it (the compiled bin: `npm run build` first). */
function rewindVerify(dir: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'verify', dir], { timeout: 30_000, env: { ...process.env, REWIND_DEBUG: '' } }, (err, stdout) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout });
    });
  });
}

const packRanges = (dir: string) =>
  readdirSync(join(dir, 'increments')).flatMap((name) => {
    const m = PACK.exec(name);
    return m ? [{ name, firstSeq: Number(m[1]), lastSeq: Number(m[2]) }] : [];
  }).sort((a, b) => a.firstSeq - b.firstSeq);

const copyStore = (from: string) => {
  const to = mkdtempSync(join(tmpdir(), 'rewind-verify-copy-'));
  dirs.push(to);
  cpSync(from, to, { recursive: true });
  return to;
};

describe('verify after retention, consolidation and journal retirement', () => {
  let base = '';
  /** Packs as they were before the last consolidation (some of them merged by it). */
  let before = '';

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rewind-verify-life-'));
    before = mkdtempSync(join(tmpdir(), 'rewind-verify-before-'));
    dirs.push(base, before);
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    await initStore(base, { volumes: [{ name: 'a', size: 2 ** 20 }], window: 'count:4', retain: 'writes:1m,windows:2m,hourly:1d', clock });
    const store = await Store.open(base, { clock, threads: 1, autoTick: false, limits: { segmentBytesMax: 64 * 1024 } });
    const rand = prng(7);
    // 30 hours of writes, one every 5 minutes (three windows an hour), then a burst of three windows
    // in two minutes: windows too recent to merge until the clock moves on.
    for (let k = 0; k < 372; k++) {
      clock.advance(k < 360 ? 5 * MINUTE : 10_000);
      const block = Math.floor(rand() * 254);
      await store.write('a', block * 4096 + Math.floor(rand() * 2048), randomBytes(rand, 1 + Math.floor(rand() * 6000)));
    }
    await store.settle();
    await store.consolidate();
    for (const p of packRanges(base)) copyFileSync(join(base, 'increments', p.name), join(before, p.name));
    clock.advance(3 * HOUR);
    const done = await store.consolidate();
    expect(done.merged).toBeGreaterThan(0);
    // A last window of large writes spans journal segments: recovery needs more than the newest one.
    for (let k = 0; k < 4; k++) {
      clock.advance(1000);
      await store.write('a', k * 65536, randomBytes(rand, 40_000));
    }
    await store.settle();
    await store.consolidate();
    await store.close();
  }, 120_000);

  it('finds no problem, and notes the windows retention dropped', async () => {
    const report = await verifyDir(base);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.notes.some((n) => /^\d+ windows retired/.test(n)), report.notes.join('\n')).toBe(true);
    // The history really is shaped: the oldest windows are gone, some packs are merged, the journal starts late.
    const index = await TransactionIndex.open(nodeStorage, join(base, 'index'), false);
    const entries = index.entries;
    index.close();
    const packs = packRanges(base);
    expect(packs[0].firstSeq).toBeGreaterThan(1);
    expect(packs.some((p) => entries.filter((e) => e.firstSeq >= p.firstSeq && e.lastSeq <= p.lastSeq).length > 1)).toBe(true);
    expect(new JournalReader(nodeStorage, join(base, 'journal')).segments()[0].firstSeq).toBeGreaterThan(1);
    expect(report.checked.packs).toBe(packs.length);
    expect(report.checked.transactions).toBe(entries.length);
    expect(report.checked.replicaBlocks).toBeGreaterThan(0);
  });

  it('rewind verify exits 0 with the retired windows as a note, and 1 naming the journal when its tail is gone', async () => {
    const sound = await rewindVerify(base);
    expect(sound.code, sound.stdout).toBe(0);
    expect(sound.stdout).toMatch(/^note: \d+ windows retired /m);
    expect(sound.stdout).toMatch(/^ok$/m);
    const dir = copyStore(base);
    const segments = new JournalReader(nodeStorage, join(dir, 'journal')).segments();
    rmSync(segments[segments.length - 1].path);
    const damaged = await rewindVerify(dir);
    expect(damaged.code, damaged.stdout).toBe(1);
    expect(damaged.stdout).toContain(`DAMAGE: ${join(dir, 'journal')} at byte 0: the journal ends at seq`);
  });

  it('names a merged pack with a flipped byte', async () => {
    const dir = copyStore(base);
    const index = await TransactionIndex.open(nodeStorage, join(dir, 'index'), false);
    const entries = index.entries;
    index.close();
    const merged = packRanges(dir).find((p) => entries.filter((e) => e.firstSeq >= p.firstSeq && e.lastSeq <= p.lastSeq).length > 1)!;
    const path = join(dir, 'increments', merged.name);
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1] ^= 0x40;
    writeFileSync(path, bytes);
    const report = await verifyDir(dir);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.file)).toContain(path);
  });

  it('takes a pack left by an interrupted consolidation for a note, not damage', async () => {
    const dir = copyStore(base);
    const now = packRanges(dir);
    const piece = readdirSync(before).find((name) => {
      const m = PACK.exec(name)!;
      const [first, last] = [Number(m[1]), Number(m[2])];
      return !now.some((p) => p.name === name) && now.some((p) => p.firstSeq <= first && last <= p.lastSeq);
    });
    expect(piece, 'a pack the last consolidation merged into a larger one').toBeDefined();
    copyFileSync(join(before, piece!), join(dir, 'increments', piece!));
    const report = await verifyDir(dir);
    expect(report.problems).toEqual([]);
    expect(report.notes.some((n) => n.includes(piece!) && n.includes('interrupted consolidation') && n.includes('the writer removes it on open'))).toBe(true);
    expect(report.checked.packs).toBe(now.length);
    // The next writer removes it; the store verifies without the note.
    const store = await Store.open(dir, { clock: new ManualClock(Date.UTC(2026, 0, 3)), threads: 1, autoTick: false });
    await store.close();
    expect(packRanges(dir).map((p) => p.name)).toEqual(now.map((p) => p.name));
    const after = await verifyDir(dir);
    expect(after.problems).toEqual([]);
    expect(after.notes.some((n) => n.includes('interrupted consolidation'))).toBe(false);
  });

  it('with a writer running, takes packs merged and segments retired under it for a stale listing, not damage', async () => {
    const dir = copyStore(base);
    const now = packRanges(dir);
    // The first listings are from before the last consolidation: the packs it merged and a segment since retired.
    const merged = now.filter((p) => readdirSync(before).some((name) => !now.some((q) => q.name === name) && p.firstSeq <= Number(PACK.exec(name)![1]) && Number(PACK.exec(name)![2]) <= p.lastSeq));
    expect(merged.length).toBeGreaterThan(0);
    const oldPacks = readdirSync(before).filter((name) => merged.some((p) => p.firstSeq <= Number(PACK.exec(name)![1]) && Number(PACK.exec(name)![2]) <= p.lastSeq));
    const stale = new Map<string, string[]>([
      [join(dir, 'increments'), [...now.filter((p) => !merged.includes(p)).map((p) => p.name), ...oldPacks].sort()],
      [join(dir, 'journal'), ['0000000000000001-0000000000000002.seg', ...readdirSync(join(dir, 'journal'))].sort()],
    ]);
    const storage = new Proxy(nodeStorage, {
      get(target, key) {
        if (key !== 'list') return Reflect.get(target, key, target);
        return (d: string) => {
          const names = stale.get(d);
          stale.delete(d);
          return names ?? target.list(d);
        };
      },
    }) as Storage;
    const config = readConfig(nodeStorage, dir);
    const volumes = new VolumeSet(nodeStorage, dir, config, false);
    const journal = new JournalReader(storage, join(dir, 'journal'));
    const index = await TransactionIndex.open(nodeStorage, join(dir, 'index'), false);
    try {
      const report = verifyStore({ storage, dir, blockSize: config.blockSize, volumes, index, journal, writerActive: true });
      expect(stale.size).toBe(0);
      expect(report.problems).toEqual([]);
      expect(report.checked.packs).toBe(now.length);
      expect(report.checked.journalRecords).toBe(4);
    } finally {
      index.close();
      journal.closeFiles();
      volumes.close();
    }
  });

  it('finds the journal short of what recovery needs when its newest segment is gone', async () => {
    const dir = copyStore(base);
    const segments = new JournalReader(nodeStorage, join(dir, 'journal')).segments();
    expect(segments.length).toBeGreaterThan(1);
    rmSync(segments[segments.length - 1].path);
    const report = await verifyDir(dir);
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.file === join(dir, 'journal') && /the journal (ends|starts) at seq/.test(p.message)), JSON.stringify(report.problems)).toBe(true);
  });

  it('finds the journal short when a segment recovery starts from is retired', async () => {
    const dir = copyStore(base);
    const index = await TransactionIndex.open(nodeStorage, join(dir, 'index'), false);
    const last = index.last!;
    index.close();
    const segments = new JournalReader(nodeStorage, join(dir, 'journal')).segments();
    // Retire every segment up to and including the one holding the last applied window's first record.
    const holding = segments.findIndex((s) => s.firstSeq === last.journal.segment);
    expect(holding).toBeGreaterThanOrEqual(0);
    expect(holding).toBeLessThan(segments.length - 1);
    for (const s of segments.slice(0, holding + 1)) rmSync(s.path);
    const report = await verifyDir(dir);
    expect(report.problems.map((p) => p.message)).toContainEqual(expect.stringMatching(new RegExp(`^the journal starts at seq \\d+, after seq ${last.firstSeq} \\(the first write of transaction ${last.id}`)));
  });
});

describe('how packs line up with the transaction windows', () => {
  const entry = (id: number, firstSeq: number, lastSeq: number) => ({ id, firstSeq, lastSeq }) as TxEntry;
  // Windows 1..4, 5..8, 9..12, 13..16, 17..20.
  const entries = [1, 5, 9, 13, 17].map((first, i) => entry(i + 1, first, first + 3));
  const r = (firstSeq: number, lastSeq: number) => ({ firstSeq, lastSeq, name: `${firstSeq}-${lastSeq}` });

  it('takes the largest packs for the chain and calls the packs they cover superseded', () => {
    const layout = layOutPacks([r(9, 12), r(5, 12), r(13, 16), r(5, 8), r(17, 20)]);
    expect(layout.chain.map((p) => p.name)).toEqual(['5-12', '13-16', '17-20']);
    expect(layout.superseded.map((p) => p.name).sort()).toEqual(['5-8', '9-12']);
    expect(layout.overlapping).toEqual([]);
    const a = alignPacks(layout.chain, entries);
    expect(a.roles).toEqual([{ kind: 'windows', from: 1, to: 2 }, { kind: 'windows', from: 3, to: 3 }, { kind: 'windows', from: 4, to: 4 }]);
    expect(a.retired).toBe(1);
    expect(a.missing).toEqual([]);
  });

  it('keeps a gap (a missing pack) and a partly overlapping pack out of the chain rule', () => {
    const layout = layOutPacks([r(1, 4), r(3, 6), r(13, 20)]);
    expect(layout.chain.map((p) => p.name)).toEqual(['1-4', '13-20']);
    expect(layout.overlapping.map((o) => [o.pack.name, o.other.name])).toEqual([['3-6', '1-4']]);
    expect(layOutPacks([r(1, 4), r(9, 6), r(5, 8)])).toEqual({ chain: [r(1, 4), r(5, 8)], superseded: [], overlapping: [], backwards: [r(9, 6)] });
    const a = alignPacks(layout.chain, entries);
    expect(a.retired).toBe(0);
    expect(a.missing.map((e) => e.id)).toEqual([2, 3]);
  });

  it('calls a pack starting or ending inside a window misaligned, and packs past the last window unapplied or orphans', () => {
    const a = alignPacks([r(5, 10), r(11, 20), r(21, 24), r(29, 30)], entries);
    expect(a.roles.map((x) => x.kind)).toEqual(['misaligned', 'misaligned', 'unapplied', 'orphan']);
    // Windows a misaligned pack overlaps are its damage, not missing packs; window 1 came before the chain.
    expect(a.missing).toEqual([]);
    expect(a.retired).toBe(1);
  });

  it('counts every window retired when no pack is left', () => {
    const a = alignPacks([], entries);
    expect(a).toEqual({ roles: [], retired: 5, missing: [] });
  });
});
