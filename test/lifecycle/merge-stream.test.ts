// The streaming merge (src/lifecycle/merge.ts over src/increment/pack-sections.ts): packs of several
// sections per volume, blocks changed by several of them, two volumes; the merged pack must hold, for
// every block any of them changed, the old contents from the first pack that changed it and the CRC
// of the new contents from the last one, exactly what reading every pack whole says.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { readPack, type Pack } from '../../src/increment/pack.js';
import { readSection, readSectionTable } from '../../src/increment/pack-sections.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { prng } from '../../src/prng.js';

let dir: string;
let store: Store | undefined;

afterEach(async () => {
  await store?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const B = 4096;
const packsOf = () => readdirSync(join(dir, 'increments')).filter((n) => n.endsWith('.pack')).sort().map((n) => join(dir, 'increments', n));

it('merges packs of many sections a section at a time into what reading them whole gives', async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-merge-stream-'));
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 10, 5));
  const size = 16 << 20;
  await initStore(dir, { volumes: [{ name: 'a', size }, { name: 'b', size }], window: 'marker', retain: 'windows:1m,hourly:1d', clock });
  store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  const rand = prng(7);
  // Four windows of 3 MiB per volume in 64 KiB writes at random places: more than one 2 MiB chunk
  // (section) per volume per pack, and blocks several windows change.
  for (let w = 0; w < 4; w++) {
    for (const v of ['a', 'b']) {
      for (let i = 0; i < 48; i++) {
        const data = Buffer.alloc(65536);
        for (let k = 0; k < data.length; k += 512) data.writeUInt32LE(Math.floor(rand() * 2 ** 32), k);
        await store.write(v, Math.floor(rand() * (size / 65536)) * 65536, data);
      }
    }
    store.markWindow();
    clock.advance(1000);
    await store.drain();
  }
  const whole: Pack[] = packsOf().map((p) => readPack(nodeStorage, p));
  expect(whole).toHaveLength(4);
  expect(whole.every((p) => p.sections.filter((s) => s.volume === 0).length > 1)).toBe(true);

  // The section table and its sections agree with the pack read whole.
  const table = readSectionTable(nodeStorage, whole[1].path);
  expect(table.header).toEqual(whole[1].header);
  const f = nodeStorage.open(whole[1].path, 'read');
  try {
    table.sections.forEach((e, k) => {
      const s = readSection(f, table, e);
      expect([s.volume, s.blocks]).toEqual([whole[1].sections[k].volume, whole[1].sections[k].blocks]);
      expect([e.firstBlock, e.lastBlock]).toEqual([s.blocks[0], s.blocks[s.blocks.length - 1]]);
    });
  } finally {
    f.close();
  }

  clock.advance(60 * 60_000);
  expect((await store.consolidate()).merged).toBeGreaterThan(0);
  const merged = packsOf();
  expect(merged).toHaveLength(1);
  const m = readPack(nodeStorage, merged[0]);
  const got = Buffer.alloc(B);
  const want = Buffer.alloc(B);
  for (const volume of [0, 1]) {
    const blocks = new Set(whole.flatMap((p) => [...p.blocksOf(volume).keys()]));
    expect(new Set(m.blocksOf(volume).keys())).toEqual(blocks);
    for (const block of blocks) {
      const first = whole.find((p) => p.blocksOf(volume).has(block))!;
      const last = [...whole].reverse().find((p) => p.blocksOf(volume).has(block))!;
      first.decode(volume, block, 'old', want, 0);
      m.decode(volume, block, 'old', got, 0);
      expect(got.equals(want), `old contents of block ${block} of volume ${volume}`).toBe(true);
      expect(m.newCrc(volume, block)).toBe(last.newCrc(volume, block));
    }
  }
});
