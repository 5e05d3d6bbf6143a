// Seeded crash simulation of clones: a store on the simulated disk with some history; then a clone is
// created, written (every alignment), flushed now and then, closed, and sometimes deleted, and the disk
// crashes at a storage operation drawn from the seed anywhere in that. After recovery:
//   - the clone exists whole or not at all (a create or delete the crash cut short);
//   - every sector of the clone holds what the clone held at its last completed flush or what a write
//     made since then wrote there (a flushed write is never lost; nothing reads as garbage, and a block
//     never reads a write it was not given);
//   - production and history are untouched (the volume reads as the model), and the clone still works.
// `SIM_SEED=<n>` replays one seed; `SIM_SEEDS=<n>` runs seeds 1..n.
import { describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';
import type { CloneHandle } from '../../src/clones/clone-set.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { SimCrash, SimStorage } from './sim-storage.js';
import { DIR, START_MS, stopCrashed } from './harness.js';

const ONE = process.env.SIM_SEED ? Number(process.env.SIM_SEED) : null;
const SEEDS = ONE !== null ? [ONE] : Array.from({ length: Number(process.env.SIM_SEEDS ?? 24) }, (_, i) => i + 1);
const KiB = 1024;
const SECTOR = 512;

type Action = { kind: 'write'; offset: number; data: Buffer } | { kind: 'zero'; offset: number; length: number } | { kind: 'flush' } | { kind: 'close' } | { kind: 'delete' };

interface Plan {
  seed: number;
  blockSize: number;
  size: number;
  history: { offset: number; data: Buffer }[];
  cloneSeq: number;
  actions: Action[];
}

function makePlan(seed: number): Plan {
  const rand = prng(seed * 17 + 3);
  const blockSize = rand() < 0.5 ? 512 : 4096;
  const size = (2 + Math.floor(rand() * 4)) * 64 * KiB;
  const span = () => {
    const len = 1 + Math.floor(rand() * (rand() < 0.8 ? 5000 : 40_000));
    return { offset: Math.floor(rand() * (size - len + 1)), len };
  };
  const history = Array.from({ length: 10 + Math.floor(rand() * 20) }, () => {
    const { offset, len } = span();
    return { offset, data: randomBytes(rand, len) };
  });
  const actions: Action[] = [];
  for (let i = 0, n = 10 + Math.floor(rand() * 30); i < n; i++) {
    const { offset, len } = span();
    actions.push(rand() < 0.85 ? { kind: 'write', offset, data: randomBytes(rand, len) } : { kind: 'zero', offset, length: len });
    if (rand() < 0.2) actions.push({ kind: 'flush' });
  }
  actions.push({ kind: 'close' });
  if (rand() < 0.4) actions.push({ kind: 'delete' });
  return { seed, blockSize, size, history, cloneSeq: Math.floor(rand() * (history.length + 1)), actions };
}

const options = (storage: SimStorage, clock: ManualClock, unclean: boolean) => ({
  storage, clock, threads: 1, autoTick: false, autoLifecycle: false, lock: () => ({ unclean, release() {} }),
});

async function setup(plan: Plan) {
  const storage = new SimStorage({ seed: plan.seed });
  const clock = new ManualClock(START_MS);
  await initStore(DIR, { storage, clock, blockSize: plan.blockSize, window: 'count:4', volumes: [{ name: 'a', size: plan.size }] });
  const store = await Store.open(DIR, options(storage, clock, false));
  const model = new Model({ a: plan.size });
  for (const w of plan.history) {
    clock.advance(1000);
    model.add({ seq: model.lastSeq + 1, volume: 'a', offset: w.offset, data: w.data, time: clock.now() });
    await store.write('a', w.offset, w.data);
  }
  await store.settle();
  return { storage, clock, store, model };
}

interface Run {
  crash: SimCrash | null;
  ops: number;
  /** The record was durable (create resolved); a delete began; it resolved. */
  created: boolean;
  deleting: boolean;
  deleted: boolean;
  /** The clone at its last completed flush, and as each write since then left it. */
  flushed: Buffer;
  since: Buffer[];
}

async function runClone(plan: Plan, storage: SimStorage, store: Store, base: Buffer, crashAt?: number): Promise<Run> {
  const start = storage.ops;
  const r: Run = { crash: null, ops: 0, created: false, deleting: false, deleted: false, flushed: Buffer.from(base), since: [] };
  let current = Buffer.from(base);
  let handle: CloneHandle | null = null;
  if (crashAt !== undefined) storage.crashAtOp(crashAt);
  try {
    await store.clones.create('c', 'a', { seq: plan.cloneSeq });
    r.created = true;
    handle = await store.clones.acquire('c');
    for (const a of plan.actions) {
      if (a.kind === 'write' || a.kind === 'zero') {
        current = Buffer.from(current);
        if (a.kind === 'write') a.data.copy(current, a.offset);
        else current.fill(0, a.offset, a.offset + a.length);
        r.since.push(current); // before the call: a crash inside it may have written some of it
        if (a.kind === 'write') handle.clone.write(a.offset, a.data);
        else handle.clone.writeZeroes(a.offset, a.length);
      } else if (a.kind === 'flush' || a.kind === 'close') {
        if (a.kind === 'flush') await handle!.clone.flush();
        else await handle!.close();
        r.flushed = current;
        r.since = [];
      } else {
        r.deleting = true;
        await store.clones.delete('c');
        r.deleted = true;
      }
    }
  } catch (err) {
    if (!storage.frozen) throw err;
    r.crash = err instanceof SimCrash ? err : new SimCrash('?', '?');
  }
  // A crash at a removal that may fail quietly (a stale open marker is harmless) is a crash all the same.
  if (!r.crash && storage.frozen) r.crash = await storage.whenFrozen();
  r.ops = storage.ops - start;
  return r;
}

async function check(plan: Plan, store: Store, model: Model, r: Run, label: string): Promise<void> {
  if (!store.read('a', 0, plan.size).equals(model.at('a', model.lastSeq))) throw new Error(`${label}: production changed`);
  const exists = store.clones.exists('c');
  if (r.created && !r.deleting && !exists) throw new Error(`${label}: a clone whose create completed is gone`);
  if (r.deleted && exists) throw new Error(`${label}: a clone whose delete completed is back`);
  if (!exists) return;
  const h = await store.clones.acquire('c');
  const got = h.clone.read(0, plan.size);
  const allowed = [r.flushed, ...r.since];
  for (let s = 0; s < plan.size; s += SECTOR) {
    if (!allowed.some((img) => img.subarray(s, s + SECTOR).equals(got.subarray(s, s + SECTOR)))) {
      throw new Error(`${label}: sector at byte ${s} holds neither the flushed contents nor any write made since (${r.since.length} writes since the last flush)`);
    }
  }
  // It keeps working: a write, a flush, a read.
  h.clone.write(1, Buffer.from('after'));
  await h.clone.flush();
  if (h.clone.read(1, 5).toString() !== 'after') throw new Error(`${label}: the clone does not take writes after recovery`);
  await h.close();
}

describe('clone crash simulation', () => {
  it.each(SEEDS)('seed %i: a crash anywhere in create, writes, flushes, close or delete keeps every flushed write', async (seed) => {
    const plan = makePlan(seed);
    // A dry run counts the operations; the crash lands on one of them.
    const dry = await setup(plan);
    const base = dry.model.at('a', plan.cloneSeq);
    const full = await runClone(plan, dry.storage, dry.store, base);
    expect(full.crash).toBeNull();
    await dry.store.close();
    const crashAt = 1 + Math.floor(prng(seed ^ 0xc105e)() * full.ops);
    const { storage, clock, store, model } = await setup(plan);
    const r = await runClone(plan, storage, store, base, crashAt);
    const label = `seed ${seed} (SIM_SEED=${seed}), crash at op ${crashAt} of ${full.ops} (${r.crash?.op} ${r.crash?.path})`;
    expect(r.crash, label).not.toBeNull();
    await stopCrashed(store);
    storage.crash();
    const again = await Store.open(DIR, options(storage, clock, true));
    try {
      await check(plan, again, model, r, label);
    } finally {
      await again.close();
    }
  });
});
