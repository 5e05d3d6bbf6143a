// The engine against a reference model: random overlapping, unaligned writes of 1 byte to 1 MiB
// across two volumes, windows closed by every policy, and restores at many random sequence
// numbers, times and transactions compared byte for byte with the model. A failure prints the seed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store, openStoreReader } from '../../src/index.js';
import { verifyStore } from '../../src/verify/verify.js';
import { Model, prng, randomBytes } from '../helpers/model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Scenario {
  policy: string;
  seed: number;
  writes: number;
  blockSize: number;
}

const SIZES = { a: 2 * 2 ** 20, b: 1.5 * 2 ** 20 };

function writeLength(rand: () => number, max: number): number {
  const r = rand();
  const len = r < 0.6 ? 1 + Math.floor(rand() * 4096)
    : r < 0.85 ? 4096 + Math.floor(rand() * 60_000)
    : r < 0.97 ? 65536 + Math.floor(rand() * 400_000)
    : 1 + Math.floor(rand() * 2 ** 20);
  return Math.min(len, max);
}

function payload(rand: () => number, len: number): Buffer {
  const kind = rand();
  if (kind < 0.15) return Buffer.alloc(len); // zeroes: exercises zero runs
  if (kind < 0.3) return Buffer.alloc(len, Math.floor(rand() * 256));
  const b = randomBytes(rand, len);
  if (kind < 0.5) for (let i = 0; i < len; i += 64) b.fill(0, i, Math.min(len, i + 32)); // sparse mix
  return b;
}

async function runScenario(s: Scenario) {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-model-'));
  dirs.push(dir);
  const rand = prng(s.seed);
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await initStore(dir, { volumes: Object.entries(SIZES).map(([name, size]) => ({ name, size })), blockSize: s.blockSize, window: s.policy, clock });
  clock.advance(5);
  let store = await Store.open(dir, { clock, threads: 2, autoTick: false, limits: { chunkBytes: 16 * s.blockSize } });
  const model = new Model(SIZES);
  const names = Object.keys(SIZES) as (keyof typeof SIZES)[];

  const write = async () => {
    const volume = names[Math.floor(rand() * names.length)];
    const size = SIZES[volume];
    const len = writeLength(rand, size);
    let offset = Math.floor(rand() * (size - len + 1));
    if (rand() < 0.4) offset = Math.min(size - len, offset - (offset % 512));
    const data = payload(rand, len);
    const copy = Buffer.from(data);
    const time = clock.now();
    const seq = await store.write(volume, offset, data);
    data.fill(0xee); // the caller may reuse its buffer once write() returns
    model.add({ seq, volume, offset, data: copy, time });
    clock.advance(Math.floor(rand() * 12));
    store.tick();
    const r = rand();
    if (r < 0.05) await store.flush();
    else if (r < 0.07) store.markWindow();
  };

  const checkView = (volume: string, seq: number, expected: Buffer, label: string) => {
    const view = store.history.view(volume, seq);
    const got = view.read(0, expected.byteLength);
    if (!got.equals(expected)) {
      let at = 0;
      while (got[at] === expected[at]) at++;
      expect.fail(`${label}: seed ${s.seed}, policy ${s.policy}: volume ${volume} at seq ${seq} differs first at byte ${at}`);
    }
  };

  for (let i = 0; i < s.writes; i++) await write();

  // 1. Random seqs while windows are still being applied and the last one is open.
  const seqs = [0, model.lastSeq, ...Array.from({ length: 12 }, () => Math.floor(rand() * (model.lastSeq + 1)))].sort((x, y) => x - y);
  const cur = model.cursor();
  for (const seq of seqs) {
    cur.advanceTo(seq);
    for (const v of names) checkView(v, seq, cur.volume(v), 'before settle');
  }

  // 2. Live views keep their bytes while more windows are applied.
  const live = Array.from({ length: 4 }, () => {
    const seq = Math.floor(rand() * (model.lastSeq + 1));
    const volume = names[Math.floor(rand() * names.length)];
    return { seq, volume, view: store.history.view(volume, seq), expected: model.at(volume, seq) };
  });
  for (let i = 0; i < s.writes / 4; i++) await write();
  await store.settle();
  for (const l of live) expect(l.view.read(0, l.expected.byteLength).equals(l.expected), `live view ${l.volume}@${l.seq} (seed ${s.seed})`).toBe(true);

  // 3. Transactions, times and a few steps.
  const log = store.log();
  expect(log.length).toBeGreaterThan(3);
  expect(log[0].firstSeq).toBe(1);
  for (let i = 1; i < log.length; i++) expect(log[i].firstSeq).toBe(log[i - 1].lastSeq + 1);
  expect(log[log.length - 1].lastSeq).toBe(model.lastSeq);
  for (let k = 0; k < 6; k++) {
    const tx = log[Math.floor(rand() * log.length)];
    const volume = names[k % 2];
    const seq = store.history.resolve({ tx: tx.id });
    expect(seq).toBe(tx.lastSeq);
    checkView(volume, seq, model.at(volume, seq), `tx ${tx.id}`);
  }
  const t0 = model.writes[0].time;
  const t1 = clock.now();
  for (let k = 0; k < 6; k++) {
    const time = t0 + Math.floor(rand() * (t1 - t0 + 1));
    const seq = store.history.resolve({ time });
    expect(seq, `time ${new Date(time).toISOString()}`).toBe(model.seqAtTime(time));
  }
  const stepAt = 1 + Math.floor(rand() * (model.lastSeq - 2));
  const stepper = store.history.view('a', stepAt);
  expect(stepper.next()).toBe(true);
  expect(stepper.read(0, SIZES.a).equals(model.at('a', stepAt + 1))).toBe(true);
  expect(stepper.prev() && stepper.prev()).toBe(true);
  expect(stepper.read(0, SIZES.a).equals(model.at('a', stepAt - 1))).toBe(true);

  // 4. Restores to files, from the writer and from a reader in the same process.
  const target = Math.floor(rand() * (model.lastSeq + 1));
  const out = join(dir, 'restored');
  await store.restore('b', { seq: target }, out);
  expect(readFileSync(out).equals(model.at('b', target))).toBe(true);

  // 5. Close, check the replica equals production, reopen, and read the past again.
  await store.close();
  for (const v of names) expect(readFileSync(join(dir, 'replica', v)).equals(model.at(v, model.lastSeq)), `replica ${v}`).toBe(true);
  for (const v of names) expect(readFileSync(join(dir, 'volumes', v)).equals(model.at(v, model.lastSeq)), `production ${v}`).toBe(true);
  const reader = await openStoreReader(dir, { clock });
  try {
    const report = verifyStore({ storage: (await import('../../src/index.js')).nodeStorage, dir, blockSize: s.blockSize, volumes: reader.history.volumes, index: reader.history.index, journal: reader.history.journal });
    expect(report.problems).toEqual([]);
    const again = Math.floor(rand() * (model.lastSeq + 1));
    await reader.history.restore('a', { seq: again }, out);
    expect(readFileSync(out).equals(model.at('a', again))).toBe(true);
  } finally {
    reader.close();
  }
  store = await Store.open(dir, { clock, threads: 1, autoTick: false });
  const afterReopen = Math.floor(rand() * (model.lastSeq + 1));
  checkView('a', afterReopen, model.at('a', afterReopen), 'after reopen');
  await store.close();
  return { windows: log.length, writes: model.lastSeq };
}

describe('engine against the reference model', () => {
  const scenarios: Scenario[] = [
    { policy: 'count:7', seed: 1, writes: 240, blockSize: 4096 },
    { policy: 'time:40ms', seed: 2, writes: 240, blockSize: 4096 },
    { policy: 'bytes:192K', seed: 3, writes: 240, blockSize: 512 },
    { policy: 'adaptive:128K', seed: 4, writes: 240, blockSize: 4096 },
    { policy: 'marker', seed: 5, writes: 240, blockSize: 4096 },
    { policy: 'time:25ms,count:11', seed: 6, writes: 240, blockSize: 65536 },
  ];
  for (const s of scenarios) {
    it(`policy ${s.policy}, block size ${s.blockSize}, seed ${s.seed}`, async () => {
      const r = await runScenario(s);
      expect(r.windows).toBeGreaterThan(10);
    });
  }
});
