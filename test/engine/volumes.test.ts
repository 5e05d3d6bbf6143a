// A volume set: volumes made inside the store, and an existing file used as a production volume,
// whose contents at init are the starting point of its history. One sequence spans the set.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { initStore, ManualClock, Store, RewindError } from '../../src/index.js';
import { prng, randomBytes } from '../helpers/model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('uses an existing file as a production volume, with its contents as the baseline', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-vol-'));
  dirs.push(dir);
  const external = join(dir, 'disk.img');
  const baseline = randomBytes(prng(3), 256 * 1024);
  writeFileSync(external, baseline);
  const clock = new ManualClock();
  const config = await initStore(join(dir, 's'), { volumes: [{ name: 'ext', size: 0, path: external }, { name: 'int', size: 64 * 1024 }], window: 'count:2', clock });
  expect(config.volumes[0].size).toBe(baseline.byteLength);
  expect(readFileSync(join(dir, 's', 'replica', 'ext')).equals(baseline)).toBe(true);

  const store = await Store.open(join(dir, 's'), { clock, threads: 1, autoTick: false });
  const s1 = await store.write('ext', 100, Buffer.from('first'));
  const s2 = await store.write('int', 0, Buffer.from('second'));
  const s3 = await store.write('ext', 4000, Buffer.alloc(300, 7));
  expect([s1, s2, s3]).toEqual([1, 2, 3]); // one sequence across the set
  await store.settle();
  // Production is written by its own thread; a flush is what promises the file holds every write.
  await store.flush();
  const after = Buffer.from(baseline);
  Buffer.from('first').copy(after, 100);
  Buffer.alloc(300, 7).copy(after, 4000);
  expect(readFileSync(external).equals(after)).toBe(true); // writes reach the external file
  expect(store.history.view('ext', 0).read(0, baseline.byteLength).equals(baseline)).toBe(true);
  expect(store.history.view('ext', 2).read(0, 4096).equals(Buffer.concat([baseline.subarray(0, 100), Buffer.from('first'), baseline.subarray(105, 4096)]))).toBe(true);
  await store.close();
});

it('rejects sizes that are not whole blocks and duplicate names before creating anything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-vol-'));
  dirs.push(dir);
  const bad = await initStore(join(dir, 'a'), { volumes: [{ name: 'x', size: 1000 }] }).catch((e) => e);
  expect((bad as RewindError).code).toBe('BAD_ARGUMENT');
  expect((bad as Error).message).toMatch(/size 1000 is not a multiple of the block size 4096/);
  const dup = await initStore(join(dir, 'b'), { volumes: [{ name: 'x', size: 4096 }, { name: 'x', size: 4096 }] }).catch((e) => e);
  expect((dup as Error).message).toMatch(/volume "x" is named twice/);
  const name = await initStore(join(dir, 'c'), { volumes: [{ name: 'a@seq', size: 4096 }] }).catch((e) => e);
  expect((name as Error).message).toMatch(/volume name "a@seq"/);
  expect(() => readFileSync(join(dir, 'a', 'rewind.json'))).toThrow();
});
