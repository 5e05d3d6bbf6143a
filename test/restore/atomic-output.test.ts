// A restore that fails leaves no partial output behind (src/restore/output.ts): a single restore or a
// group restore (--all) that meets a damaged pack after the copy has started, or a full disk, fails
// with the error it met and leaves the output directory as it was: no partial volume, no temporary
// file, an existing output file untouched. A restore that succeeds leaves only its output.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStoreReader, type StoreReader } from '../../src/store/reader.js';
import { restoreAll } from '../../src/recovery-ops/group-restore.js';
import { RewindError } from '../../src/errors.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { SET_VOLUMES, volumeSetHistory, type VolumeSetHistory } from '../helpers/volume-set-history.js';

let h: VolumeSetHistory;
const cleanup: (() => void)[] = [];

beforeAll(async () => {
  h = await volumeSetHistory({ writes: 60, windowWrites: 10, unapplied: 5 });
});
afterAll(() => h?.remove());
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** A copy of the store (the test damages it) and an empty output directory. */
function scratch(): { store: string; out: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-atomic-'));
  cleanup.push(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = path.join(root, 'store');
  fs.cpSync(h.dir, store, { recursive: true });
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  return { store, out };
}

async function reader(store: string, storage?: FaultyStorage): Promise<StoreReader> {
  const r = await openStoreReader(store, { storage });
  cleanup.unshift(() => r.close());
  return r;
}

/** Flips a byte in the middle of the pack ending at `lastSeq`: its section checksum fails when it is read. */
function damagePack(store: string, lastSeq: number): string {
  const dir = path.join(store, 'increments');
  const name = fs.readdirSync(dir).find((f) => f.endsWith('.pack') && Number(f.split('-')[1].split('.')[0]) === lastSeq)!;
  const file = path.join(dir, name);
  const b = fs.readFileSync(file);
  b[b.byteLength >> 1] ^= 0x40;
  fs.writeFileSync(file, b);
  return file;
}

async function failure(p: Promise<unknown>): Promise<RewindError | NodeJS.ErrnoException> {
  return p.then(() => { throw new Error('the restore should have failed'); }, (err: unknown) => err as RewindError);
}

describe('a restore that fails leaves nothing behind', () => {
  it('a single restore meeting a pack damaged after the copy started: CORRUPT, no file, an existing output untouched', async () => {
    const { store, out } = scratch();
    const r = await reader(store);
    // No memory budget: every pack after the target is read after the replica copy (step 3).
    r.history.restoreRollbackBytes = 0;
    const file = path.join(out, 'db.img');
    fs.writeFileSync(file, 'the previous restore');
    let damaged = '';
    const err = await failure(r.history.restore('db', { seq: 5 }, file, () => {
      // The copy has started: now the second pack after the target goes bad on disk.
      if (!damaged) damaged = damagePack(store, 20);
    }));
    expect(damaged).not.toBe('');
    expect((err as RewindError).code).toBe('CORRUPT');
    expect(err.message).toContain(damaged);
    expect(fs.readdirSync(out)).toEqual(['db.img']);
    expect(fs.readFileSync(file, 'utf8')).toBe('the previous restore');
  });

  it('a single restore on a full disk: ENOSPC, no file', async () => {
    const { store, out } = scratch();
    const storage = new FaultyStorage();
    const r = await reader(store, storage);
    // The disk is full: the first write lands half, then fails.
    storage.fault = { path: /\/out\//, code: 'ENOSPC', partial: true };
    const err = await failure(r.history.restore('db', { seq: 44 }, path.join(out, 'db.img')));
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(storage.injected).toBe(1);
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('--all meeting a pack damaged while the second volume is copied: the first, complete, is removed too', async () => {
    const { store, out } = scratch();
    const r = await reader(store);
    r.history.restoreRollbackBytes = 0;
    let damaged = '';
    const err = await failure(restoreAll(r.history, { seq: 15 }, out, {
      progress: (volume) => {
        if (volume === SET_VOLUMES[1].name && !damaged) damaged = damagePack(store, 40);
      },
    }));
    expect(damaged).not.toBe('');
    expect((err as RewindError).code).toBe('CORRUPT');
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('--all on a disk that fills up at the last volume: ENOSPC, the directory as it was', async () => {
    const { store, out } = scratch();
    const storage = new FaultyStorage();
    const r = await reader(store, storage);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    storage.fault = { path: new RegExp(`/out/${SET_VOLUMES[2].name}\\.img`), code: 'ENOSPC', partial: true };
    const err = await failure(restoreAll(r.history, { seq: 33 }, out));
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(fs.readdirSync(out)).toEqual(['notes.txt']);
  });

  it('a restore that succeeds leaves its output and nothing else', async () => {
    const { store, out } = scratch();
    const r = await reader(store);
    const res = await restoreAll(r.history, { seq: 57 }, out);
    expect(res.seq).toBe(57);
    expect(fs.readdirSync(out).sort()).toEqual(SET_VOLUMES.map((v) => `${v.name}.img`).sort());
    for (const v of SET_VOLUMES) expect(fs.readFileSync(path.join(out, `${v.name}.img`)).equals(h.model.at(v.name, 57))).toBe(true);
  });
});
