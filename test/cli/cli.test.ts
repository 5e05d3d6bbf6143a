// The `rewind` command line, run as a user runs it: the real bin (`node bin/rewind.js`, which runs
// the compiled dist/ — `npm run build` first) in a child process. The contract it checks: the
// commands and their help; `init` then `status --json` as one JSON document; errors exit
// non-zero (2 for bad arguments, 3 for an unusable store, 1 for damage) with a message on stderr
// naming the problem; `log --json` lists the windows; `restore` by --seq, --tx or --time
// writes exactly the volume at that point; `verify` says ok on a sound store and names the damaged
// file otherwise; a restore that needs a damaged file fails naming it, one that does not succeeds.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { rewind as runRewind, type Ran } from '../helpers/processes.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { prng } from '../../src/prng.js';

/** The `rewind` command as a user runs it. */
const rewind = (...args: string[]): Promise<Ran> => runRewind(args);


const iso = (ms: number) => new Date(ms).toISOString();

function flipByte(file: string, position: number): void {
  const b = fs.readFileSync(file);
  expect(position).toBeLessThan(b.byteLength);
  b[position] ^= 0x40;
  fs.writeFileSync(file, b);
}

const tmpDirs: string[] = [];
function tmp(label: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `rewind-cli-${label}-`));
  tmpDirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('help', () => {
  it('--help lists every command, and each command has its own --help', async () => {
    const top = await rewind('--help');
    expect(top.code).toBe(0);
    for (const cmd of ['init', 'serve', 'status', 'log', 'restore', 'verify']) expect(top.stdout).toMatch(new RegExp(`^\\s+${cmd} `, 'm'));
    const runs = await Promise.all(['init', 'serve', 'status', 'log', 'restore', 'verify'].map(async (cmd) => [cmd, await rewind(cmd, '--help')] as const));
    for (const [cmd, r] of runs) {
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain(`Usage: rewind ${cmd}`);
    }
    const restore = runs.find(([c]) => c === 'restore')![1].stdout;
    for (const opt of ['--volume', '--seq', '--time', '--tx', '--out']) expect(restore).toContain(opt);
  });
});

describe('a new store', () => {
  it('init with two volumes, then status --json is one JSON document describing the empty store', async () => {
    const store = path.join(tmp('init'), 'store');
    const init = await rewind('init', store, '--volume', 'a:1M', '--volume', 'b:2M');
    expect(init.code).toBe(0);
    const status = await rewind('status', store, '--json');
    expect(status.code).toBe(0);
    expect(status.stdout.trim().split('\n')).toHaveLength(1);
    const s = JSON.parse(status.stdout);
    expect(s).toMatchObject({
      lastSeq: 0, lastTime: null, appliedSeq: 0, transactions: 0,
      volumes: [{ name: 'a', size: 1048576 }, { name: 'b', size: 2097152 }],
    });
    expect(fs.statSync(path.join(store, 'volumes', 'a')).size).toBe(1048576);
    expect(fs.statSync(path.join(store, 'replica', 'b')).size).toBe(2097152);

    // A second init on it is refused and leaves it as it was.
    const before = fs.readFileSync(path.join(store, 'rewind.json'));
    const again = await rewind('init', store, '--volume', 'c:1M');
    expect(again.code).toBe(3);
    expect(again.stderr).toContain(`${store} is already a rewind store`);
    expect(fs.readFileSync(path.join(store, 'rewind.json')).equals(before)).toBe(true);

    const log = await rewind('log', store, '--json');
    expect(log.code).toBe(0);
    expect(JSON.parse(log.stdout)).toEqual([]);
  });

  it('init refuses a malformed size (exit 2) and creates nothing', async () => {
    const store = path.join(tmp('badsize'), 'store');
    const r = await rewind('init', store, '--volume', 'a:1X');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"1X" is not a size');
    expect(r.stdout).toBe('');
    expect(fs.existsSync(store)).toBe(false);
  });

  it('a command on a missing store exits 3 and says it is not a store', async () => {
    const missing = path.join(tmp('missing'), 'nope');
    const runs = await Promise.all([rewind('status', missing, '--json'), rewind('verify', missing)]);
    for (const r of runs) {
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`${missing} is not a rewind store`);
      expect(r.stdout).toBe('');
    }
  });
});

// ---- a populated store -------------------------------------------------------------------------

const VOLUMES = [{ name: 'a', size: 64 * 1024 }, { name: 'b', size: 32 * 1024 }];
const WRITES = 24;
/** Windows closed by markWindow(): tx 1 = seq 1..5, tx 2 = 6..12, tx 3 = 13..20; 21..24 are journaled but not applied. */
const TX = [[1, 5], [6, 12], [13, 20]] as const;
const APPLIED = 20;

let root: string;
/** The store under test, as a copy taken while its writer was still open (like `rewind serve`). */
let base: string;
let T0: number;
/** model[seq][volume]: the volume's bytes right after write seq (seq 0: before any write). */
const model: Record<string, Buffer>[] = [];
const volumeOfSeq: string[] = [''];
const timeOfSeq: number[] = [0];
const lengthOfSeq: number[] = [0];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-cli-populated-'));
  const live = path.join(root, 'live');
  base = path.join(root, 'base');
  // Whole milliseconds, an hour ago: every write time is in the past for the CLI's clock.
  T0 = Date.now() - 3_600_000;
  const clock = new ManualClock(T0);
  await initStore(live, { volumes: VOLUMES, window: 'time:1h', blockSize: 4096, clock });
  // Small segments, so the journal has several sealed ones.
  const store = await Store.open(live, { clock, threads: 1, limits: { segmentBytesMax: 16 * 1024 } });
  try {
    const rand = prng(42);
    const cur: Record<string, Buffer> = Object.fromEntries(VOLUMES.map((v) => [v.name, Buffer.alloc(v.size)]));
    model.push(Object.fromEntries(Object.entries(cur).map(([k, b]) => [k, Buffer.from(b)])));
    for (let seq = 1; seq <= WRITES; seq++) {
      clock.advance(1000);
      const v = VOLUMES[rand() < 0.6 ? 0 : 1];
      const len = 1 + Math.floor(rand() * 3000);
      const offset = Math.floor(rand() * (v.size - len));
      const data = Buffer.alloc(len);
      for (let i = 0; i < len; i++) data[i] = (rand() * 256) | 0;
      expect(await store.write(v.name, offset, data)).toBe(seq);
      data.copy(cur[v.name], offset);
      model.push(Object.fromEntries(Object.entries(cur).map(([k, b]) => [k, Buffer.from(b)])));
      volumeOfSeq.push(v.name);
      timeOfSeq.push(clock.now());
      lengthOfSeq.push(len);
      if (seq === 5 || seq === 12) {
        await store.flush();
        expect(store.markWindow()).toBe(seq === 5 ? 1 : 2);
      }
      if (seq === APPLIED) await store.settle();
    }
    await store.flush();
    expect(store.appliedSeq).toBe(APPLIED);
    expect(store.lastSeq).toBe(WRITES);
    fs.cpSync(live, base, { recursive: true });
  } finally {
    await store.close();
  }
  fs.rmSync(live, { recursive: true, force: true });
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** A fresh copy of the populated store, for a test that damages it. */
function copyOfBase(label: string): string {
  const d = path.join(tmp(label), 'store');
  fs.cpSync(base, d, { recursive: true });
  return d;
}

async function restoreTo(store: string, volume: string, target: string[]): Promise<Ran & { out: string }> {
  const out = path.join(tmp('out'), `${volume}.img`);
  const r = await rewind('restore', store, '--volume', volume, ...target, '--out', out);
  return { ...r, out };
}

async function expectRestoreEquals(store: string, volume: string, target: string[], seq: number): Promise<void> {
  const r = await restoreTo(store, volume, target);
  expect(r.code, `${volume} ${target.join(' ')}: ${r.stderr}`).toBe(0);
  const got = fs.readFileSync(r.out);
  const want = model[seq][volume];
  expect(got.byteLength).toBe(want.byteLength);
  const firstDiff = got.findIndex((b, i) => b !== want[i]);
  expect(firstDiff, `${volume} ${target.join(' ')} should be the volume after seq ${seq}`).toBe(-1);
}

describe('a populated store', () => {
  it('status --json reports the newest write, the applied point and the transactions', async () => {
    const r = await rewind('status', base, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      lastSeq: WRITES, lastTime: iso(T0 + WRITES * 1000), appliedSeq: APPLIED, transactions: 3,
      volumes: VOLUMES, createdAt: iso(T0),
    });
  });

  it('status --json reports protection: retention, capacity, history bytes, oldest point, protection, replica lag', async () => {
    const r = await rewind('status', base, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    const t21 = timeOfSeq[APPLIED + 1];
    const lagBytes = lengthOfSeq.slice(APPLIED + 1).reduce((a, b) => a + b, 0);
    expect(s).toMatchObject({
      retention: 'all', capacityBytes: null, consolidationBacklogBytes: 0,
      oldestRestorable: { seq: 0, time: iso(T0) },
      protection: { requiredSeconds: null, predictedSeconds: null },
      replicaLag: { writes: WRITES - APPLIED, bytes: lagBytes },
    });
    let files = 0;
    for (const sub of ['journal', 'increments', 'index']) for (const f of fs.readdirSync(path.join(base, sub))) files += fs.statSync(path.join(base, sub, f)).size;
    expect(s.historyBytes).toBe(files);
    // Ages against the CLI's own clock: at least as old as when the test started looking.
    expect(s.protection.achievedSeconds).toBeGreaterThanOrEqual((Date.now() - T0) / 1000 - 60);
    expect(s.replicaLag.seconds).toBeGreaterThanOrEqual((Date.now() - t21) / 1000 - 60);
    expect(s.replicaLag.seconds).toBeLessThanOrEqual(s.protection.achievedSeconds);

    const text = await rewind('status', base);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^replica lag +4 writes, .* ago$/m);
    expect(text.stdout).toMatch(/^history +\d.* \(no capacity set\)$/m);
    expect(text.stdout).toMatch(/^oldest +seq 0 at /m);
    expect(text.stdout).toMatch(/^protection +1h( \d+m)? achieved \(everything kept\)$/m);
  });

  it('log --json lists the transactions with consecutive ids and sequence ranges', async () => {
    const r = await rewind('log', base, '--json');
    expect(r.code).toBe(0);
    const log = JSON.parse(r.stdout) as { id: number; firstSeq: number; lastSeq: number; t1: string; t2: string; writes: number; bytesWritten: number }[];
    expect(log.map((e) => [e.id, e.firstSeq, e.lastSeq])).toEqual(TX.map(([f, l], i) => [i + 1, f, l]));
    for (const [i, [f, l]] of TX.entries()) {
      // Everything is kept: every window's writes are still in the journal.
      expect(log[i]).toMatchObject({ t1: iso(timeOfSeq[f]), t2: iso(timeOfSeq[l]), writes: l - f + 1, granularity: 'writes', windows: 1 });
    }
    const text = await rewind('log', base);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(1 + TX.length);
  });

  it('restore --seq writes the volume exactly as it was after that write, in and between windows and in the unapplied tail', async () => {
    const cases: [string, number][] = [['a', 0], ['a', 3], ['a', 12], ['a', 22], ['a', 24], ['b', 9], ['b', 20]];
    await Promise.all(cases.map(([v, seq]) => expectRestoreEquals(base, v, ['--seq', String(seq)], seq)));
  });

  it('restore --tx writes the volume at the end of that window', async () => {
    await Promise.all([
      ...TX.map(([, last], i) => expectRestoreEquals(base, 'a', ['--tx', String(i + 1)], last)),
      expectRestoreEquals(base, 'b', ['--tx', '2'], 12),
    ]);
  });

  it('restore --time writes the volume after every write stamped at or before that time', async () => {
    await Promise.all([
      expectRestoreEquals(base, 'a', ['--time', iso(T0)], 0), // the moment the store was created
      expectRestoreEquals(base, 'a', ['--time', iso(timeOfSeq[9])], 9), // exactly at write 9
      expectRestoreEquals(base, 'b', ['--time', iso(timeOfSeq[9] + 999)], 9), // just before write 10
      expectRestoreEquals(base, 'a', ['--time', iso(timeOfSeq[22] + 500)], 22), // in the unapplied tail
    ]);
  });

  it('verify exits 0 and prints ok', async () => {
    const r = await rewind('verify', base);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/checked 24 journal records .* 3 packs, 3 transactions/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('ok');
  });
});

describe('errors', () => {
  it.each<[string, () => string[], number, RegExp]>([
    ['an unknown volume', () => ['restore', base, '--volume', 'zz', '--seq', '1'], 2, /unknown volume "zz" \(volumes: a, b\)/],
    ['a malformed time', () => ['restore', base, '--volume', 'a', '--time', 'yesterday'], 2, /"yesterday" is not an ISO 8601 time/],
    ['--seq after the newest write', () => ['restore', base, '--volume', 'a', '--seq', String(WRITES + 1)], 2, new RegExp(`seq ${WRITES + 1} is after the newest write \\(seq ${WRITES}\\)`)],
    ['a time before the store was created', () => ['restore', base, '--volume', 'a', '--time', iso(T0 - 1000)], 2, /before the oldest retained point/],
    ['a time in the future', () => ['restore', base, '--volume', 'a', '--time', iso(Date.now() + 3_600_000)], 2, /in the future/],
    ['a transaction that does not exist', () => ['restore', base, '--volume', 'a', '--tx', '4'], 2, /transaction 4 does not exist \(transactions are 1\.\.3\)/],
    ['two of --seq/--time/--tx', () => ['restore', base, '--volume', 'a', '--seq', '1', '--tx', '1'], 2, /give exactly one of --seq N, --time ISO or --tx ID \(got --seq and --tx\)/],
  ])('%s: exits non-zero with the problem on stderr, and writes no output file', async (_what, args, code, message) => {
    const out = path.join(tmp('err'), 'out.img');
    const r = await rewind(...args(), '--out', out);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('damage', () => {
  it('(a) a flipped payload byte in a sealed journal segment: verify exits 1 naming the segment', async () => {
    const store = copyOfBase('jdamage');
    const segs = fs.readdirSync(path.join(store, 'journal')).sort();
    const sealed = segs.filter((n) => !n.includes('open'));
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    const first = sealed[0];
    const [, lastOfFirst] = /^(\d+)-(\d+)\.seg$/.exec(first)!.slice(1).map(Number);
    // Precondition for the restores below: the damaged segment lies before the last applied window.
    expect(lastOfFirst).toBeLessThan(TX[2][0]);
    const file = path.join(store, 'journal', first);
    flipByte(file, 64 + 48 + 1); // the payload of seq 1, the segment's first record

    const r = await rewind('verify', store);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`DAMAGE: ${file} at byte 64: payload checksum mismatch for seq 1`);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 problem found');

    const [needs] = await Promise.all([
      // The state after seq 1 replays write 1 from the journal: refused, not served wrong.
      restoreTo(store, volumeOfSeq[1], ['--seq', '1']),
      // The newest state is the replica plus the journal tail from the last window on: unaffected.
      expectRestoreEquals(store, 'a', ['--seq', String(WRITES)], WRITES),
    ]);
    expect(needs.code).toBe(1);
    expect(needs.stderr).toMatch(/payload checksum mismatch for seq 1/);
    expect(needs.stderr).toContain(file);
  });

  it('(b) a flipped byte in a pack: verify exits 1 naming it; restores that need it fail, others succeed', async () => {
    const store = copyOfBase('pdamage');
    const packs = fs.readdirSync(path.join(store, 'increments')).sort();
    expect(packs).toEqual(TX.map(([f, l]) => `${String(f).padStart(16, '0')}-${String(l).padStart(16, '0')}.pack`));
    const file = path.join(store, 'increments', packs[1]); // tx 2, seq 6..12
    flipByte(file, Math.floor(fs.statSync(file).size / 2));

    const r = await rewind('verify', store);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`DAMAGE: ${file} at byte `);

    // What a restore reads (src/restore/view.ts): the replica (at seq 20), then the old contents
    // from the pack of every window ending after the target, then journal writes from the view's
    // base up to the target. So any target before seq 12 reads tx 2's pack; a target at or after
    // seq 12 never opens it — including the newest write, which is replica + journal tail (21..24).
    const [within] = await Promise.all([
      restoreTo(store, 'b', ['--seq', '9']),
      expectRestoreEquals(store, 'a', ['--tx', '2'], 12),
      expectRestoreEquals(store, 'b', ['--seq', String(WRITES)], WRITES),
    ]);
    expect(within.code).toBe(1);
    expect(within.stderr).toContain(file);
    expect(within.stderr).toMatch(/checksum mismatch/);
  });

  it('(c) a flipped byte in index/transactions.idx: verify exits 1 naming it; status refuses the store', async () => {
    const store = copyOfBase('idamage');
    const file = path.join(store, 'index', 'transactions.idx');
    expect(fs.statSync(file).size).toBe(3 * 128);
    flipByte(file, 20); // entry 1 (its first seq), with two good entries after it

    const [v, s] = await Promise.all([rewind('verify', store), rewind('status', store, '--json')]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`DAMAGE: ${file} at byte 0: entry checksum mismatch`);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain(`${file} at byte 0`);
    expect(s.stdout).toBe('');
  });
});
