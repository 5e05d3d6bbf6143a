// The crash simulation's pieces: a workload generated from a seed, a runner that drives the engine
// on a SimStorage with a ManualClock (crashing at a chosen storage operation), and the checks made
// after recovery against the reference model. Everything is deterministic from the seed: the only
// points where the test yields to the event loop (and so lets the kernel pool's results in) are
// the workload's drain/settle/close steps, so the storage operations happen in the same order on
// every run and `crashAtOp(k)` lands on the same operation.
import { initStore, ManualClock, Store } from '../../src/index.js';
import { SimCrash, SimStorage } from './sim-storage.js';
import type { Limits } from '../../src/limits.js';
import { decodeRecordHeader, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../../src/journal/record.js';
import { TX_TMP_FILE } from '../../src/transactions/transactions.js';
import { verifyStore } from '../../src/verify/verify.js';
import { Model, prng, randomBytes } from '../helpers/model.js';

export const DIR = '/store';
export const OUT_DIR = '/out';
export const START_MS = Date.UTC(2026, 0, 1);

export type Action =
  | { kind: 'write'; volume: string; offset: number; data: Buffer }
  | { kind: 'flush' }
  | { kind: 'mark' }
  | { kind: 'tick'; ms: number }
  | { kind: 'drain' }
  /** The next journal write fails with this error (the write call must reject with it). */
  | { kind: 'fault'; error: 'EIO' | 'ENOSPC' }
  /** Restore a volume to a file at the end of the workload (a crash may hit it). */
  | { kind: 'restore'; volume: string; seq: number }
  | { kind: 'close' };

export interface Plan {
  seed: number;
  policy: string;
  blockSize: number;
  sizes: Record<string, number>;
  limits: Partial<Limits>;
  actions: Action[];
}

const KiB = 1024;

export function makePlan(seed: number): Plan {
  const rand = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const blockSize = pick([512, 4096, 4096, 16384]);
  const sizeOf = () => (4 + Math.floor(rand() * 13)) * 64 * KiB; // 256 KiB .. 1 MiB
  const sizes = { a: sizeOf(), b: sizeOf() };
  const policy = pick([
    () => `count:${2 + Math.floor(rand() * 20)}`,
    () => `time:${5 + Math.floor(rand() * 60)}ms`,
    () => `bytes:${pick([32, 64, 128, 256, 512])}K`,
    () => 'marker',
    () => `time:${10 + Math.floor(rand() * 40)}ms,count:${5 + Math.floor(rand() * 20)}`,
  ])();
  const limits: Partial<Limits> = {
    // Small segments so the journal rotates; small chunks so packs have several sections;
    // small windows so the kernel pool's shared memory stays small.
    segmentBytesMax: pick([128, 256, 512, 1024]) * KiB,
    chunkBytes: pick([4, 8, 16]) * blockSize,
    windowBytesMax: 4 * 2 ** 20,
    windowWritesMax: 4096,
  };
  const faults = rand() < 0.3;
  const names = Object.keys(sizes) as (keyof typeof sizes)[];
  const actions: Action[] = [];
  const writes = 150 + Math.floor(rand() * 200);
  let seq = 0;
  for (let i = 0; i < writes; i++) {
    const volume = pick(names);
    const size = sizes[volume];
    const r = rand();
    const len = Math.min(size, r < 0.15 ? 1 + Math.floor(rand() * 16) : r < 0.6 ? 1 + Math.floor(rand() * 4096) : 4096 + Math.floor(rand() * 61441));
    let offset = rand() < 0.3 ? Math.floor(rand() * Math.min(size - len + 1, 64 * KiB)) : Math.floor(rand() * (size - len + 1));
    if (rand() < 0.4) offset -= offset % 512;
    actions.push({ kind: 'write', volume, offset, data: payload(rand, len) });
    seq++;
    const a = rand();
    if (a < 0.08) actions.push({ kind: 'flush' });
    else if (a < 0.11) actions.push({ kind: 'mark' });
    else if (a < 0.2) actions.push({ kind: 'tick', ms: 1 + Math.floor(rand() * 30) });
    else if (a < 0.24) actions.push({ kind: 'drain' });
    else if (faults && a < 0.27) actions.push({ kind: 'fault', error: rand() < 0.5 ? 'EIO' : 'ENOSPC' });
  }
  actions.push({ kind: 'flush' });
  // The restore targets a seq the workload surely has (faulted writes take none).
  actions.push({ kind: 'restore', volume: pick(names), seq: Math.floor(rand() * (seq / 2)) });
  actions.push({ kind: 'close' });
  return { seed, policy, blockSize, sizes, limits, actions };
}

function payload(rand: () => number, len: number): Buffer {
  const kind = rand();
  if (kind < 0.15) return Buffer.alloc(len);
  if (kind < 0.3) return Buffer.alloc(len, 1 + Math.floor(rand() * 255));
  const b = randomBytes(rand, len);
  if (kind < 0.5) for (let i = 0; i < len; i += 64) b.fill(0, i, Math.min(len, i + 32));
  return b;
}

/** `sameBoot`: the last writer was killed (its page cache kept), not stopped by a power loss. */
export function storeOptions(plan: Plan, storage: SimStorage, clock: ManualClock, unclean: boolean, sameBoot = false) {
  return { storage, clock, threads: 1, autoTick: false, limits: plan.limits, lock: () => ({ unclean, sameBoot, release() {} }) };
}

/**
 * After a kill: with probability 1/2, tear or damage the newest journal segment in its unsynced part
 * (records no flush acknowledged and no window applied; production may have taken their writes):
 * the last record cut short (a kill in the middle of its append), or a byte of a record damaged, so
 * recovery cuts it and the good records after it off the journal (kept aside), or reads a header too
 * torn to say where its write went. Recovery must still bring production to the journal. Returns
 * what it did, or null. (A cut at a record boundary would lose whole records without a trace, which
 * only a power loss can do.)
 */
export function damageUnsyncedTail(storage: SimStorage, rand: () => number): string | null {
  const dir = `${DIR}/journal`;
  const newest = storage.list(dir).filter((n) => n.endsWith('.seg')).at(-1);
  if (!newest?.endsWith('-open.seg') || rand() < 0.5) return null;
  const path = `${dir}/${newest}`;
  const data = storage.readFile(path);
  const from = Math.max(storage.readDurable(path)?.byteLength ?? 0, SEGMENT_HEADER_BYTES);
  if (data.byteLength <= from) return null;
  const f = storage.open(path, 'write');
  try {
    if (rand() < 0.5) {
      let last = SEGMENT_HEADER_BYTES;
      for (let at = SEGMENT_HEADER_BYTES; at < data.byteLength;) {
        const h = decodeRecordHeader(data, at);
        if (typeof h === 'string') break;
        last = at;
        at += RECORD_HEADER_BYTES + h.length;
      }
      if (last < from) return null;
      const at = last + 1 + Math.floor(rand() * (data.byteLength - last - 1));
      f.truncate(at);
      return `last journal record torn at byte ${at - last} of ${data.byteLength - last}`;
    }
    const at = from + Math.floor(rand() * (data.byteLength - from));
    f.write(Buffer.from([data[at] ^ 0xff]), at);
    return `journal byte ${at} of ${data.byteLength} damaged`;
  } finally {
    f.close();
  }
}

/** A fresh simulated disk holding a new store, opened for writing. */
export async function setup(plan: Plan, simSeed: number) {
  const storage = new SimStorage({ seed: simSeed });
  const clock = new ManualClock(START_MS);
  storage.mkdirp(OUT_DIR);
  await initStore(DIR, { storage, clock, blockSize: plan.blockSize, window: plan.policy, volumes: Object.entries(plan.sizes).map(([name, size]) => ({ name, size })) });
  clock.advance(5);
  const store = await Store.open(DIR, storeOptions(plan, storage, clock, false));
  return { storage, clock, store };
}

export interface RunResult {
  /** The storage crashed (SimCrash) before the workload finished. */
  crash: SimCrash | null;
  /** Every write up to this seq was acknowledged by a completed flush (or close). */
  ackedSeq: number;
  /** Every write the engine was asked to make and did not refuse (the last may be absent after a crash). */
  model: Model;
  faults: number;
  ops: number;
  /** The restore the workload started, if it got that far: its output must be absent or whole after a crash. */
  restored: { volume: string; seq: number; path: string } | null;
}

/** Runs the plan; with `crashAt`, the crashAt-th mutating storage operation crashes the disk. */
export async function runWorkload(plan: Plan, storage: SimStorage, clock: ManualClock, store: Store, crashAt?: number): Promise<RunResult> {
  const model = new Model(plan.sizes);
  const start = storage.ops;
  let ackedSeq = 0;
  let lastSeq = 0;
  let faults = 0;
  if (crashAt !== undefined) storage.crashAtOp(crashAt);
  let pendingFault: 'EIO' | 'ENOSPC' | null = null;
  let restored: RunResult['restored'] = null;
  // Once the disk freezes, stop waiting on the engine: some of its waits never end then (drain()
  // after a failed journal sync retries forever).
  const frozen = storage.whenFrozen().then((c) => Promise.reject(c));
  frozen.catch(() => {});
  const until = <T>(p: Promise<T>): Promise<T> => Promise.race([p, frozen]);
  try {
    for (const a of plan.actions) {
      switch (a.kind) {
        case 'write': {
          const seq = lastSeq + 1;
          model.add({ seq, volume: a.volume, offset: a.offset, data: a.data, time: clock.now() });
          if (pendingFault) {
            const code = pendingFault;
            pendingFault = null;
            const err = await until(store.write(a.volume, a.offset, a.data)).then(() => null, (e: unknown) => e as { code?: string; errno?: string });
            if (storage.frozen) throw new SimCrash('write', 'after a fault');
            if (!err || (err.code !== code && err.errno !== code)) {
              throw new Error(`seed ${plan.seed}: a write with an injected journal ${code} ${err ? `failed with ${err.code}/${err.errno}` : 'succeeded'}: ${String((err as Error | null)?.message)}`);
            }
            storage.clearFaults();
            model.writes.pop();
            faults++;
            break;
          }
          const got = await until(store.write(a.volume, a.offset, a.data));
          if (got !== seq) throw new Error(`seed ${plan.seed}: write got seq ${got}, expected ${seq}`);
          lastSeq = seq;
          break;
        }
        case 'flush': {
          const upTo = lastSeq;
          await until(store.flush());
          ackedSeq = Math.max(ackedSeq, upTo);
          break;
        }
        case 'mark':
          store.markWindow();
          break;
        case 'tick':
          clock.advance(a.ms);
          store.tick();
          break;
        case 'drain':
          await until(store.drain());
          break;
        case 'fault':
          storage.failNext({ op: 'write', path: /\/journal\//, error: a.error });
          pendingFault = a.error;
          break;
        case 'restore': {
          const out = `${OUT_DIR}/restored-${a.volume}`;
          const seq = Math.min(a.seq, lastSeq);
          restored = { volume: a.volume, seq, path: out };
          await until(store.restore(a.volume, { seq }, out));
          if (crashAt === undefined) {
            const got = storage.readFile(out);
            const want = model.at(a.volume, seq);
            if (!got.equals(want)) throw new Error(`seed ${plan.seed}: restore of ${a.volume} at seq ${seq} differs from the model at byte ${firstDiff(got, want)}`);
          }
          break;
        }
        case 'close': {
          const upTo = lastSeq;
          await until(store.close());
          ackedSeq = upTo;
          break;
        }
      }
    }
  } catch (err) {
    if (!storage.frozen) throw err;
    return { crash: err instanceof SimCrash ? err : findCrash(err) ?? new SimCrash('?', '?'), ackedSeq, model, faults, ops: storage.ops - start, restored };
  }
  return { crash: null, ackedSeq, model, faults, ops: storage.ops - start, restored };
}

/**
 * Stops a store whose disk crashed, as a crash would: waits until no kernel task is in flight
 * (Store.abort() destroys the pool, and a task still running then surfaces as an uncaught
 * "Unexpected message from Worker"), then aborts. drain() is no use here: after a failed journal
 * sync the apply loop retries forever and drain() never settles.
 */
export async function stopCrashed(store: Store): Promise<void> {
  const pool = (store as unknown as { pool: { free: unknown[]; slots: unknown[] } }).pool;
  for (let i = 0; i < 2000 && pool.free.length < pool.slots.length; i++) await new Promise((r) => setTimeout(r, 1));
  await store.abort().catch(() => {});
}

function findCrash(err: unknown): SimCrash | null {
  for (let e = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) if (e instanceof SimCrash) return e;
  return null;
}

export function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}

/** Where a crash landed, by the file it was writing. */
export function crashPlace(c: SimCrash): string {
  const p = c.path;
  if (p.includes('/journal')) return 'journal';
  if (p.includes('/increments')) return 'pack';
  if (p.includes('/replica/')) return 'replica';
  if (p.endsWith(`/index/${TX_TMP_FILE}`)) return 'index-compaction';
  if (p.includes('/index')) return 'index';
  if (p.includes('/volumes/')) return 'production';
  if (p.startsWith(OUT_DIR)) return 'restore';
  return 'other';
}

/** A failed check, with what to replay. */
export class SimFailure extends Error {}

/**
 * Everything the engine promises after recovery, checked against the model: nothing acknowledged
 * lost, what is there is exactly the model's prefix, replica = production after settle, views at
 * seqs, times and transactions equal the model, verify finds nothing, and the store keeps working.
 */
export async function checkRecovered(plan: Plan, storage: SimStorage, clock: ManualClock, store: Store, run: RunResult, label: string): Promise<void> {
  const rand = prng(plan.seed ^ 0x5eed);
  const fail = (what: string): never => {
    throw new SimFailure(`${label}: ${what}`);
  };
  const names = Object.keys(plan.sizes);
  // A restore crashed at any point leaves its output absent or whole, never partial (restore/output.ts).
  if (run.restored && storage.exists(run.restored.path)) {
    const { volume, seq, path } = run.restored;
    const got = storage.readFile(path);
    const want = run.model.at(volume, seq);
    if (!got.equals(want)) fail(`a crashed restore of ${volume} at seq ${seq} left ${path} partial (differs from the model at byte ${firstDiff(got, want)})`);
  }
  const L = store.lastSeq;
  if (L < run.ackedSeq) fail(`lost acknowledged writes: lastSeq ${L} after recovery, but writes up to ${run.ackedSeq} were flushed`);
  if (L > run.model.lastSeq) fail(`lastSeq ${L} after recovery, but only ${run.model.lastSeq} writes were made`);
  // The model from here on: the first L writes.
  const model = new Model(plan.sizes);
  for (const w of run.model.writes.slice(0, L)) model.add(w);

  const cur = model.cursor();
  cur.advanceTo(L);
  for (const v of names) {
    const prod = storage.readFile(`${DIR}/volumes/${v}`);
    if (!prod.equals(cur.volume(v))) fail(`production ${v} differs from the model at seq ${L} (first at byte ${firstDiff(prod, cur.volume(v))})`);
  }
  const checkView = (v: string, seq: number, what: string) => {
    const got = store.history.view(v, seq).read(0, plan.sizes[v]);
    const want = model.at(v, seq);
    if (!got.equals(want)) fail(`${what}: view of ${v} at seq ${seq} differs from the model (first at byte ${firstDiff(got, want)}; applied ${store.appliedSeq}, last ${L})`);
  };
  // Views before settle: the replica may stand anywhere up to the last applied window.
  for (const seq of [0, L, Math.floor(rand() * (L + 1))]) checkView(names[seq % names.length], seq, 'before settle');

  await store.settle();
  if (store.appliedSeq !== L) fail(`after settle appliedSeq is ${store.appliedSeq}, lastSeq ${L}`);
  for (const v of names) {
    const rep = storage.readFile(`${DIR}/replica/${v}`);
    const prod = storage.readFile(`${DIR}/volumes/${v}`);
    if (!rep.equals(prod)) fail(`after settle replica ${v} differs from production (first at byte ${firstDiff(rep, prod)})`);
  }
  for (let k = 0; k < 4; k++) checkView(names[k % 2], Math.floor(rand() * (L + 1)), 'random seq');
  const log = store.log();
  if (L > 0 && (log.length === 0 || log[0].firstSeq !== 1 || log[log.length - 1].lastSeq !== L)) fail(`transaction log does not cover seqs 1..${L}`);
  for (let k = 0; k < 3 && log.length > 0; k++) {
    const tx = log[Math.floor(rand() * log.length)];
    const seq = store.history.resolve({ tx: tx.id });
    if (seq !== tx.lastSeq) fail(`tx ${tx.id} resolves to seq ${seq}, not ${tx.lastSeq}`);
    checkView(names[k % 2], seq, `tx ${tx.id}`);
  }
  if (L > 0) {
    const t0 = model.writes[0].time;
    for (let k = 0; k < 3; k++) {
      const time = t0 + Math.floor(rand() * (clock.now() - t0 + 1));
      const seq = store.history.resolve({ time });
      if (seq !== model.seqAtTime(time)) fail(`time ${new Date(time).toISOString()} resolves to seq ${seq}, the model says ${model.seqAtTime(time)}`);
      checkView(names[k % 2], seq, `time ${time - START_MS}ms`);
    }
  }
  const report = verifyStore({ storage, dir: DIR, blockSize: plan.blockSize, volumes: store.history.volumes, index: store.history.index, journal: store.history.journal });
  if (!report.ok) fail(`verify found damage: ${report.problems.map((p) => `${p.file}@${p.position}: ${p.message}`).join('; ')}`);

  // The store keeps working: more writes, a flush, a window, then views of them.
  for (let k = 0; k < 8; k++) {
    const v = names[k % 2];
    const len = 1 + Math.floor(rand() * 9000);
    const offset = Math.floor(rand() * (plan.sizes[v] - len + 1));
    const data = randomBytes(rand, len);
    clock.advance(1);
    model.add({ seq: model.lastSeq + 1, volume: v, offset, data, time: clock.now() });
    const seq = await store.write(v, offset, data);
    if (seq !== model.lastSeq) fail(`write after recovery got seq ${seq}, expected ${model.lastSeq}`);
  }
  await store.flush();
  await store.settle();
  checkView('a', model.lastSeq, 'after more writes');
  checkView('b', L, 'recovered point after more writes');
}
