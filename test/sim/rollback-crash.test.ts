// Seeded crash simulation of rolling production back in place: a store on the simulated disk takes a
// workload drawn from the seed, then one volume (or all) is rolled back to a seq drawn from it, and
// the disk crashes at a storage operation of the rollback (settling, the intent written, the blocks
// rewritten, the flush, the intent removed, the close). One seed in four crashes again while the
// reopened store finishes the rollback. After recovery: once the intent was durable, the rolled
// volumes equal the model at the target (the reopened store finished it) and the others are
// untouched; before, nothing changed. Either way no rollback.json is left, every volume at the seq
// before the rollback equals the model there (the rollback is undoable), the target still reads as
// the model, verify finds nothing and rolling back again (the undo) works. `SIM_SEED=<n>` replays one
// seed, `SIM_SEEDS=<n>` runs seeds 1..n.
import { describe, expect, it } from 'vitest';
import { initStore, ManualClock, rollbackProduction, Store } from '../../src/index.js';
import { ROLLBACK_FILE } from '../../src/recovery-ops/rollback-intent.js';
import { verifyStore } from '../../src/verify/verify.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { SimStorage } from './sim-storage.js';
import { DIR, firstDiff, START_MS, stopCrashed } from './harness.js';

const ONE = process.env.SIM_SEED ? Number(process.env.SIM_SEED) : null;
/** About 1.7 s each on an idle 2-core machine. */
const DEFAULT_SEEDS = 12;
const SEEDS = ONE !== null ? [ONE] : Array.from({ length: Number(process.env.SIM_SEEDS ?? DEFAULT_SEEDS) }, (_, i) => i + 1);
const KiB = 1024;
const INTENT = `${DIR}/${ROLLBACK_FILE}`;

interface Plan {
  seed: number;
  blockSize: number;
  window: string;
  sizes: { a: number; b: number };
  writes: { volume: 'a' | 'b'; offset: number; data: Buffer; then: 'flush' | 'mark' | 'drain' | null }[];
  /** The rollback: its volumes and target (a seq of the workload). */
  volumes: ('a' | 'b')[];
  target: number;
}

function makePlan(seed: number): Plan {
  const rand = prng(seed * 104729 + 3);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const blockSize = pick([512, 4096]);
  const sizes = { a: (4 + Math.floor(rand() * 9)) * 64 * KiB, b: (4 + Math.floor(rand() * 9)) * 64 * KiB };
  const window = pick([`count:${2 + Math.floor(rand() * 15)}`, 'marker', `bytes:${pick([32, 128])}K`]);
  const writes: Plan['writes'] = [];
  const n = 60 + Math.floor(rand() * 120);
  for (let i = 0; i < n; i++) {
    const volume = rand() < 0.6 ? 'a' : 'b';
    const len = Math.min(sizes[volume], rand() < 0.6 ? 1 + Math.floor(rand() * 4096) : 4096 + Math.floor(rand() * 30000));
    const offset = Math.floor(rand() * (sizes[volume] - len + 1));
    const r = rand();
    writes.push({ volume, offset, data: randomBytes(rand, len), then: r < 0.08 ? 'flush' : r < 0.14 ? 'mark' : r < 0.18 ? 'drain' : null });
  }
  return { seed, blockSize, window, sizes, writes, volumes: rand() < 0.5 ? ['a'] : ['a', 'b'], target: Math.floor(rand() * (n + 1)) };
}

const options = (storage: SimStorage, clock: ManualClock, unclean: boolean, warnings: string[] = []) => ({
  storage, clock, threads: 1, autoTick: false, autoLifecycle: false,
  limits: { segmentBytesMax: 128 * KiB, chunkBytes: 8 * 4096, windowBytesMax: 4 * 2 ** 20, windowWritesMax: 4096 },
  lock: () => ({ unclean, release() {} }), onWarning: (m: string) => warnings.push(m),
});

/** The workload (never crashed), then a store ready for the rollback; the model of its writes. */
async function prepare(plan: Plan) {
  const storage = new SimStorage({ seed: plan.seed });
  const clock = new ManualClock(START_MS);
  await initStore(DIR, { storage, clock, blockSize: plan.blockSize, window: plan.window, volumes: Object.entries(plan.sizes).map(([name, size]) => ({ name, size })) });
  clock.advance(5);
  const store = await Store.open(DIR, options(storage, clock, false));
  const model = new Model(plan.sizes);
  for (const w of plan.writes) {
    clock.advance(1);
    model.add({ seq: model.lastSeq + 1, volume: w.volume, offset: w.offset, data: w.data, time: clock.now() });
    await store.write(w.volume, w.offset, w.data);
    if (w.then === 'flush') await store.flush();
    else if (w.then === 'mark') store.markWindow();
    else if (w.then === 'drain') await store.drain();
  }
  await store.flush();
  return { storage, clock, store, model };
}

/** The rollback and the close, with a crash at the `crashAt`-th storage operation of it. */
async function rollBack(plan: Plan, storage: SimStorage, store: Store, crashAt?: number) {
  const start = storage.ops;
  let intentDurableAt = Infinity;
  let renamedAt = Infinity;
  storage.observer = (op, path) => {
    const k = storage.ops - start;
    if (op === 'rename' && path === `${INTENT}.tmp`) renamedAt = k;
    if (op === 'syncDir' && path === DIR && renamedAt < k && intentDurableAt === Infinity) intentDurableAt = k;
  };
  if (crashAt !== undefined) storage.crashAtOp(crashAt);
  const frozen = storage.whenFrozen().then((c) => Promise.reject(c));
  frozen.catch(() => {});
  let crashed = false;
  try {
    await Promise.race([rollbackProduction(store, { volumes: plan.volumes, target: { seq: plan.target } }), frozen]);
    await Promise.race([store.close(), frozen]);
  } catch (err) {
    if (!storage.frozen) throw err;
    crashed = true;
  } finally {
    storage.observer = null;
  }
  // An operation counted before the crash point took effect; the one at it did not.
  const durable = crashAt === undefined ? intentDurableAt < Infinity : intentDurableAt < crashAt;
  return { ops: storage.ops - start, crashed, durable };
}

function check(got: Buffer, want: Buffer, what: string): void {
  if (!got.equals(want)) throw new Error(`${what} differs from the model (first at byte ${firstDiff(got, want)})`);
}

async function simulate(seed: number): Promise<{ place: string; recoveryCrash: boolean }> {
  const plan = makePlan(seed);
  const rand = prng(seed * 31 + 1);
  const L = plan.writes.length;
  // 1. A run without a crash: how many storage operations the rollback takes (and that it is right).
  let ops: number;
  {
    const { storage, store, model } = await prepare(plan);
    const r = await rollBack(plan, storage, store);
    ops = r.ops;
    const reopened = await Store.open(DIR, options(storage, new ManualClock(START_MS + 10_000), false));
    for (const v of ['a', 'b'] as const) {
      check(reopened.read(v, 0, plan.sizes[v]), model.at(v, plan.volumes.includes(v) ? plan.target : L), `seed ${seed} without a crash: ${v}`);
    }
    await reopened.close();
  }
  // 2. The same, crashed at an operation of the rollback drawn from the seed.
  const crashAt = 1 + Math.floor(rand() * ops);
  const { storage, clock, store, model } = await prepare(plan);
  const r = await rollBack(plan, storage, store, crashAt);
  if (!r.crashed) throw new Error(`seed ${seed}: no crash at op ${crashAt} of ${ops}: the run is not deterministic`);
  await stopCrashed(store);
  storage.crash();
  storage.clearFaults();
  const place = r.durable ? 'after the intent' : 'before the intent';
  // 3. Recover; one seed in four crashes while the rollback is being finished, and recovers again.
  let recoveryCrash = false;
  if (rand() < 0.25) {
    storage.crashAtOp(1 + Math.floor(rand() * 40));
    try {
      const s = await Store.open(DIR, options(storage, clock, true));
      storage.crashAtOp(Number.MAX_SAFE_INTEGER);
      await stopCrashed(s);
    } catch (err) {
      if (!storage.frozen) throw err;
    }
    recoveryCrash = storage.frozen;
    storage.crash();
  }
  const warnings: string[] = [];
  const store2 = await Store.open(DIR, options(storage, clock, true, warnings));
  try {
    const label = `seed ${seed} (${plan.volumes.join('+')} to seq ${plan.target} of ${L}, crash at op ${crashAt}/${ops} ${place}${recoveryCrash ? ' + recovery crash' : ''})`;
    if (storage.exists(INTENT)) throw new Error(`${label}: rollback.json is left after recovery`);
    if (store2.lastSeq < L) throw new Error(`${label}: lastSeq ${store2.lastSeq} after recovery; the workload's ${L} writes were flushed`);
    for (const v of ['a', 'b'] as const) {
      const rolled = plan.volumes.includes(v) && r.durable;
      check(store2.read(v, 0, plan.sizes[v]), model.at(v, rolled ? plan.target : L), `${label}: production ${v} (${rolled ? 'rolled back' : 'untouched'})`);
      // Undoable: the point before the rollback is the volume as it was.
      check(store2.history.view(v, L).read(0, plan.sizes[v]), model.at(v, L), `${label}: view of ${v} at seq ${L}, before the rollback`);
      check(store2.history.view(v, plan.target).read(0, plan.sizes[v]), model.at(v, plan.target), `${label}: view of ${v} at the target`);
    }
    await store2.settle();
    const report = verifyStore({ storage, dir: DIR, blockSize: plan.blockSize, volumes: store2.history.volumes, index: store2.history.index, journal: store2.history.journal });
    if (!report.ok) throw new Error(`${label}: verify found damage: ${report.problems.map((p) => `${p.file}@${p.position}: ${p.message}`).join('; ')}`);
    // The undo: rolling back to the seq before the rollback gives the volumes as they were.
    await rollbackProduction(store2, { volumes: ['a', 'b'], target: { seq: L } });
    for (const v of ['a', 'b'] as const) check(store2.read(v, 0, plan.sizes[v]), model.at(v, L), `${label}: production ${v} after the undo`);
  } finally {
    await store2.close();
  }
  return { place, recoveryCrash };
}

describe('rollback crash simulation', () => {
  it(`a rollback crashed at any storage operation is finished on open, or never began (${SEEDS.length} seeds)`, async () => {
    const failures: string[] = [];
    const places = new Map<string, number>();
    let recoveryCrashes = 0;
    for (const seed of SEEDS) {
      try {
        const o = await simulate(seed);
        places.set(o.place, (places.get(o.place) ?? 0) + 1);
        if (o.recoveryCrash) recoveryCrashes++;
        if (ONE !== null) console.log(`seed ${seed}: crash ${o.place}${o.recoveryCrash ? ' + recovery crash' : ''}: ok`);
      } catch (err) {
        failures.push(`SIM_SEED=${seed}: ${(err as Error).stack}`);
      }
    }
    console.log(`rollback crash simulation: ${SEEDS.length} seeds (${[...places].map(([p, n]) => `${p}: ${n}`).join(', ')}), ${recoveryCrashes} crashes while finishing, ${failures.length} failed`);
    expect(failures).toEqual([]);
    // The seeds reach both sides of the intent.
    if (ONE === null) expect(places.size).toBe(2);
  }, 600_000);
});
