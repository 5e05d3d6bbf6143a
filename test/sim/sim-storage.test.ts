// The simulated disk promises: synced data and synced names survive a crash; unsynced writes are
// each kept or lost, the last one possibly torn at a sector boundary; unsynced creates, renames and
// removes revert; injected faults are Node-style EIO/ENOSPC; crashAtOp freezes the disk; and the
// same seed gives the same result.
import { describe, expect, it } from 'vitest';
import { SECTOR_BYTES, SimCrash, SimStorage } from './sim-storage.js';
import { writeFileAtomic } from '../../src/storage/storage.js';

const fill = (n: number, v: number) => Buffer.alloc(n, v);

function fresh(seed = 1) {
  const s = new SimStorage({ seed });
  s.mkdirp('/d');
  return s;
}

describe('SimStorage', () => {
  it('reads see the page cache; synced data and names survive a crash', async () => {
    const s = fresh();
    const f = s.open('/d/a', 'create');
    f.write(fill(1000, 1), 0);
    expect(s.readFile('/d/a').equals(fill(1000, 1))).toBe(true);
    await f.sync();
    await s.syncDir('/d');
    f.write(fill(10, 2), 2000); // unsynced; may or may not survive
    s.crash({ keepProbability: 0 });
    expect(s.list('/d')).toEqual(['a']);
    expect(s.readFile('/d/a').equals(fill(1000, 1))).toBe(true);
    expect(s.sizeOf('/d/a')).toBe(1000);
  });

  it('keeps or loses each unsynced write independently', async () => {
    let kept = 0;
    let lost = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const s = fresh(seed);
      const f = s.open('/d/a', 'create');
      f.truncate(8 * 100);
      await f.sync();
      await s.syncDir('/d');
      for (let i = 0; i < 8; i++) f.write(fill(100, i + 1), i * 100);
      s.crash({ tornProbability: 0 });
      const got = s.readFile('/d/a');
      expect(got.byteLength).toBe(800);
      for (let i = 0; i < 8; i++) {
        const part = got.subarray(i * 100, (i + 1) * 100);
        if (part.equals(fill(100, i + 1))) kept++;
        else if (part.equals(fill(100, 0))) lost++;
        else expect.fail(`seed ${seed}: write ${i} is neither kept nor lost`);
      }
    }
    expect(kept).toBeGreaterThan(20);
    expect(lost).toBeGreaterThan(20);
  });

  it('tears the last unsynced write at a sector boundary', async () => {
    let torn = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const s = fresh(seed);
      const f = s.open('/d/a', 'create');
      await f.sync();
      await s.syncDir('/d');
      f.write(fill(5000, 7), 100);
      s.crash({ keepProbability: 1, tornProbability: 1 });
      const got = s.readFile('/d/a');
      // Kept up to some sector boundary strictly inside [100, 5100).
      expect(got.byteLength % SECTOR_BYTES).toBe(0);
      expect(got.byteLength).toBeGreaterThan(100);
      expect(got.byteLength).toBeLessThan(5100);
      expect(got.subarray(100).equals(fill(got.byteLength - 100, 7))).toBe(true);
      torn++;
    }
    expect(torn).toBe(30);
  });

  it('reverts unsynced creates, renames and removes', async () => {
    const s = fresh();
    await writeFileAtomic(s, '/d/cfg', Buffer.from('one'));
    const keep = s.open('/d/keep', 'create');
    await keep.sync();
    await s.syncDir('/d');
    // Unsynced namespace changes.
    const n = s.open('/d/new', 'create');
    n.write(Buffer.from('x'), 0);
    await n.sync(); // data durable, name not
    s.rename('/d/cfg', '/d/moved');
    s.remove('/d/keep');
    expect(s.list('/d')).toEqual(['moved', 'new']);
    s.crash();
    expect(s.list('/d')).toEqual(['cfg', 'keep']);
    expect(s.readFile('/d/cfg').toString()).toBe('one');
    // An atomic replace not followed by syncDir reverts to the old file.
    const t = s.open('/d/cfg.tmp', 'create');
    t.write(Buffer.from('two'), 0);
    await t.sync();
    s.rename('/d/cfg.tmp', '/d/cfg');
    expect(s.readFile('/d/cfg').toString()).toBe('two');
    s.crash();
    expect(s.readFile('/d/cfg').toString()).toBe('one');
    expect(s.exists('/d/cfg.tmp')).toBe(false);
  });

  it('makes handles from before a crash dead', async () => {
    const s = fresh();
    const f = s.open('/d/a', 'create');
    await s.syncDir('/d');
    s.crash();
    expect(() => f.write(fill(1, 1), 0)).toThrow(/stale handle/);
    expect(() => f.read(Buffer.alloc(1), 0)).toThrow(/stale handle/);
    const g = s.open('/d/a', 'write');
    g.write(fill(1, 1), 0);
    expect(g.size()).toBe(1);
  });

  it('injects Node-style EIO and ENOSPC, matching op and path, then clears', async () => {
    const s = fresh();
    const f = s.open('/d/journal', 'create');
    const g = s.open('/d/other', 'create');
    s.failNext({ op: 'write', path: /journal/, error: 'EIO', count: 2 });
    g.write(fill(10, 1), 0); // another path: unaffected
    for (let i = 0; i < 2; i++) {
      const err = (() => { try { f.write(fill(10, 1), 0); } catch (e) { return e as NodeJS.ErrnoException; } })();
      expect(err?.code).toBe('EIO');
      expect(err?.message).toMatch(/^EIO: i\/o error, write/);
    }
    expect(f.size()).toBe(0); // a failed write changes nothing
    f.write(fill(10, 1), 0);
    s.failNext({ op: 'sync', error: 'ENOSPC' });
    await expect(f.sync()).rejects.toMatchObject({ code: 'ENOSPC' });
    s.failNext({ op: 'rename', error: 'EIO' });
    expect(() => s.rename('/d/journal', '/d/j2')).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(s.stats.faults).toBe(4);
  });

  it('throws ENOSPC past the capacity, and works again when space is freed', () => {
    const s = new SimStorage({ seed: 1, capacityBytes: 4096 });
    s.mkdirp('/d');
    const f = s.open('/d/a', 'create');
    f.write(fill(4000, 1), 0);
    expect(() => f.write(fill(200, 1), 4000)).toThrow(expect.objectContaining({ code: 'ENOSPC', message: expect.stringMatching(/^ENOSPC: no space left on device, write/) }));
    expect(() => f.truncate(5000)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    f.write(fill(96, 2), 4000); // exactly full
    f.write(fill(100, 3), 0); // overwrite: no growth
    expect(s.usedBytes()).toBe(4096);
    f.truncate(1000);
    f.write(fill(200, 1), 1000);
    expect(f.size()).toBe(1200);
  });

  it('crashAtOp freezes the disk at the n-th mutating operation until crash()', async () => {
    const s = fresh();
    const f = s.open('/d/a', 'create');
    await s.syncDir('/d');
    const start = s.ops;
    s.crashAtOp(3);
    f.write(fill(10, 1), 0); // 1
    await f.sync(); // 2
    expect(() => f.write(fill(10, 2), 10)).toThrow(SimCrash); // 3: does not happen
    expect(s.frozen).toBe(true);
    expect(s.ops - start).toBe(3);
    expect(() => f.read(Buffer.alloc(1), 0)).toThrow(SimCrash);
    expect(() => s.list('/d')).toThrow(SimCrash);
    await expect(f.sync()).rejects.toBeInstanceOf(SimCrash);
    f.close(); // closing is always allowed
    s.crash();
    expect(s.frozen).toBe(false);
    expect(s.readFile('/d/a').equals(fill(10, 1))).toBe(true);
  });

  it('is deterministic for a seed', async () => {
    const run = async (seed: number) => {
      const s = fresh(seed);
      const f = s.open('/d/a', 'create');
      await s.syncDir('/d');
      for (let i = 0; i < 50; i++) {
        f.write(fill(700 + i * 13, i), i * 300);
        if (i % 17 === 16) await f.sync();
      }
      f.truncate(9000);
      f.write(fill(3000, 99), 8000);
      s.crash();
      return s.readFile('/d/a');
    };
    expect((await run(5)).equals(await run(5))).toBe(true);
    expect((await run(5)).equals(await run(6))).toBe(false);
  });

  it('lists files and subdirectories sorted; mkdirp, exists and sizeOf behave like a file system', () => {
    const s = new SimStorage({ seed: 1 });
    s.mkdirp('/s/journal');
    s.mkdirp('/s/index/');
    s.open('/s/b.json', 'create').write(fill(5, 1), 0);
    expect(s.list('/s')).toEqual(['b.json', 'index', 'journal']);
    expect(s.list('/nope')).toEqual([]);
    expect(s.exists('/s/journal')).toBe(true);
    expect(s.exists('/s//b.json')).toBe(true);
    expect(s.sizeOf('/s/b.json')).toBe(5);
    expect(() => s.open('/s/missing', 'read')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => s.open('/x/y', 'create')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => s.sizeOf('/s/missing')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
