// The consolidation counters (`rewind_consolidation_read_bytes_total` and `..._written_bytes_total`
// in `serve --metrics`, and the lifecycle bench's consolidation rate): bytes of the packs a merge read
// and of the pack it wrote, counted once the merged pack has replaced them.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';

let dir: string;
let store: Store | undefined;

afterEach(async () => {
  await store?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function packSizes(): Map<string, number> {
  const inc = join(dir, 'increments');
  return new Map(readdirSync(inc).filter((n) => n.endsWith('.pack')).map((n) => [n, statSync(join(inc, n)).size]));
}

it('counts the bytes of the packs a merge read and of the pack it wrote', async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-consolidated-'));
  // Five minutes into a UTC hour: the three windows and the merge all fall in the same hourly period.
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 10, 5));
  await initStore(dir, { volumes: [{ name: 'a', size: 1 << 20 }], window: 'count:4', retain: 'windows:1m,hourly:1d', clock });
  store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  for (let w = 0; w < 3; w++) {
    for (let i = 0; i < 4; i++) {
      await store.write('a', (w * 4 + i) * 4096, Buffer.alloc(4096, w * 4 + i + 1));
      clock.advance(1000);
    }
    await store.drain();
  }
  // Within the windows tier: every window end is held, nothing merged.
  await store.consolidate();
  expect(store.consolidatedBytes()).toEqual({ readBytes: 0, writtenBytes: 0 });
  const before = packSizes();
  expect(before.size).toBe(3);

  // Past the windows tier and past the end of their hour (a period is merged once it is complete).
  clock.advance(60 * 60_000);
  const done = await store.consolidate();
  expect(done.merged).toBe(1);
  const after = packSizes();
  const sum = (m: Map<string, number>, keep: (n: string) => boolean) => [...m].filter(([n]) => keep(n)).reduce((s, [, b]) => s + b, 0);
  const read = sum(before, (n) => !after.has(n));
  const written = sum(after, (n) => !before.has(n));
  expect(read).toBeGreaterThan(0);
  expect(written).toBeGreaterThan(0);
  expect(store.consolidatedBytes()).toEqual({ readBytes: read, writtenBytes: written });
});
