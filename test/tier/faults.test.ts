// Seeded fault simulation of shipping (the style of test/sim/): a store under a retention policy is
// written, its lifecycle runs, and the uploader ships to an object store that throttles and loses
// answers at random, and is itself "crashed" (dropped and started again from the tier) at random.
// After every step: every object the committed manifest lists is in the tier with its SHA-256, and
// the store never retired a file the tier did not hold (local history and the tier's chain meet).
// At the end, with faults off, points the tier holds restore equal to the model.
// `SIM_SEED=<n>` replays one seed, `SIM_SEEDS=<n>` runs seeds 1..n.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { sha256 } from '../../src/tier/manifest.js';
import { newestPoint, oldestPoint } from '../../src/tier/restore-plan.js';
import { storeShipSource } from '../../src/tier/ship-source.js';
import { TierReader } from '../../src/tier/tier-reader.js';
import { TierUploader } from '../../src/tier/uploader.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { MemoryObjectStore } from './memory-store.js';

const ONE = process.env.SIM_SEED ? Number(process.env.SIM_SEED) : null;
const SEEDS = ONE !== null ? [ONE] : Array.from({ length: Number(process.env.SIM_SEEDS ?? 4) }, (_, i) => i + 1);
const SIZE = 128 * 1024;

describe('shipping under faults (seeded)', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}`, async () => {
      const rand = prng(seed);
      const dir = mkdtempSync(join(tmpdir(), `rewind-tier-sim-${seed}-`));
      const clock = new ManualClock();
      const tier = new MemoryObjectStore();
      tier.random = prng(seed * 7919);
      const model = new Model({ v: SIZE });
      try {
        await initStore(dir, { volumes: [{ name: 'v', size: SIZE }], blockSize: 4096, window: 'marker', retain: 'writes:3s,windows:12s', clock });
        let up: TierUploader;
        const store = await Store.open(dir, { clock, threads: 1, autoLifecycle: false, limits: { segmentBytesMax: 48 * 1024 }, historyHold: () => up.hold() });
        const fresh = () => new TierUploader(tier, storeShipSource(store), { storeId: `sim-${seed}`, dir, retain: null, baseAfterBytes: 96 * 1024, now: () => clock.now() });
        up = fresh();
        const check = () => {
          const m = up.committed;
          if (!m) return;
          for (const o of [...m.packs, ...m.segments, ...(m.index ? [m.index] : [])]) {
            const there = tier.objects.get(o.key);
            expect(there, `seed ${seed}: ${o.key} listed and present`).toBeDefined();
            expect(sha256(there!), `seed ${seed}: ${o.key} checksum`).toBe(o.sha256);
          }
          // The store kept every pack after the tier's chain: local and tier history meet.
          const local = store.history.catalog.packs();
          const tierEnd = m.packs.at(-1)?.lastSeq ?? 0;
          if (local.length > 0) expect(local[0].firstSeq, `seed ${seed}: local packs start by the tier's end`).toBeLessThanOrEqual(tierEnd + 1);
        };
        tier.faultRate = 0.2;
        for (let round = 0; round < 60; round++) {
          const writes = 1 + Math.floor(rand() * 4);
          for (let k = 0; k < writes; k++) {
            const len = 1 + Math.floor(rand() * 9000);
            const offset = Math.floor(rand() * (SIZE - len));
            const data = randomBytes(rand, len);
            const seq = await store.write('v', offset, data);
            model.add({ seq, volume: 'v', offset, data, time: clock.now() });
          }
          store.markWindow();
          await store.drain();
          clock.advance(500 + Math.floor(rand() * 1000));
          const r = rand();
          if (r < 0.5) await up.pass().catch(() => undefined);
          else if (r < 0.6) up = fresh(); // the uploader crashed: the next one starts from the tier
          await store.consolidate();
          check();
        }
        tier.faultRate = 0;
        while (await up.pass());
        await up.pass({ forceBase: true });
        check();
        const m = up.committed!;
        expect(newestPoint(m)).toBe(store.lastSeq);
        const reader = await TierReader.open(tier);
        try {
          const oldest = oldestPoint(m);
          const ends = m.packs.map((p) => p.lastSeq).filter((s) => s >= oldest);
          for (const seq of [oldest, ends[Math.floor(ends.length / 2)], store.lastSeq]) {
            const out = join(dir, `r-${seq}.img`);
            await reader.restore('v', { seq }, out);
            expect(readFileSync(out).equals(model.at('v', seq)), `seed ${seed}: seq ${seq}`).toBe(true);
          }
        } finally {
          reader.close();
        }
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  }
});
