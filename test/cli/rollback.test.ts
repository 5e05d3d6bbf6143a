// `rewind rollback`, run as a user runs it (the real bin in a child process): production set back in
// place by seq, time or transaction, one volume or --all; --json; the printed undo command undoes
// it; every bad argument exits 2 and a missing store 3 with nothing changed; with `rewind serve`
// running it refuses with exit 3 naming the server's pid and saying to stop it first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initStore, Store } from '../../src/index.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { removeTempDirs, rewind as runRewind, startServe, stopAll, tempDir, type Ran } from '../helpers/processes.js';

const rewind = (...args: string[]): Promise<Ran> => runRewind(args);
const SIZES = { a: 512 * 1024, b: 256 * 1024 };

afterEach(async (ctx) => {
  await stopAll(ctx);
  removeTempDirs();
});

/** A closed store with 40 writes over two volumes (windows of 4), and its model. */
async function history() {
  const store = path.join(tempDir('rewind-cli-rollback-'), 'store');
  await initStore(store, { volumes: Object.entries(SIZES).map(([name, size]) => ({ name, size })), window: 'count:4' });
  const s = await Store.open(store, { threads: 1 });
  const model = new Model(SIZES);
  const rand = prng(11);
  for (let i = 0; i < 40; i++) {
    const volume = i % 3 === 0 ? 'b' : 'a';
    const data = randomBytes(rand, 1 + Math.floor(rand() * 9000));
    const offset = Math.floor(rand() * (SIZES[volume] - data.byteLength));
    model.add({ seq: i + 1, volume, offset, data, time: Date.now() });
    await s.write(volume, offset, data);
  }
  await s.close();
  return { store, model };
}

const production = (store: string, v: string) => fs.readFileSync(path.join(store, 'volumes', v));

describe('rewind rollback', () => {
  it('sets a volume back to a seq (--json), and the printed command undoes it', async () => {
    const { store, model } = await history();
    const r = await rewind('rollback', store, '--volume', 'a', '--seq', '12', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ seq: 12, requested: 'seq 12', nearest: false, beforeSeq: 40, firstSeq: 41 });
    expect(j.volumes).toEqual([expect.objectContaining({ volume: 'a', blocksWritten: expect.any(Number), bytesWritten: j.bytesWritten })]);
    expect(j.lastSeq).toBeGreaterThanOrEqual(41);
    expect(typeof j.seconds).toBe('number');
    expect(production(store, 'a').equals(model.at('a', 12))).toBe(true);
    expect(production(store, 'b').equals(model.at('b', 40))).toBe(true);
    // The rollback is history: the point before it restores the volume as it was.
    const out = path.join(path.dirname(store), 'before.img');
    expect((await rewind('restore', store, '--volume', 'a', '--seq', '40', '--out', out)).code).toBe(0);
    expect(fs.readFileSync(out).equals(model.at('a', 40))).toBe(true);
    // Undo, as the text output says.
    const again = await rewind('rollback', store, '--volume', 'a', '--seq', '3');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^a: \d+ of \d+ changed blocks rewritten/m);
    const undo = /to undo: rewind rollback (\S+) --volume a --seq (\d+)/.exec(again.stdout);
    expect(undo?.[1]).toBe(store);
    expect(production(store, 'a').equals(model.at('a', 3))).toBe(true);
    expect((await rewind('rollback', store, '--volume', 'a', '--seq', undo![2])).code).toBe(0);
    expect(production(store, 'a').equals(model.at('a', 12))).toBe(true);
  });

  it('--all by transaction and by time; a rollback to where production already is writes nothing', async () => {
    const { store, model } = await history();
    const tx = await rewind('rollback', store, '--all', '--tx', '5', '--json');
    expect(tx.code).toBe(0);
    expect(JSON.parse(tx.stdout)).toMatchObject({ seq: 20, requested: 'tx 5' });
    for (const v of ['a', 'b']) expect(production(store, v).equals(model.at(v, 20)), v).toBe(true);
    const log = JSON.parse((await rewind('log', store, '--json')).stdout) as { id: number; lastSeq: number; t2: string }[];
    const w2 = log.find((e) => e.lastSeq === 8)!;
    const byTime = await rewind('rollback', store, '--all', '--time', w2.t2);
    expect(byTime.code).toBe(0);
    // The point at a time is the last write stamped at or before it: seq 8, or later when the writes
    // after it fell in the same millisecond (a fast or a slow moment of the machine decides).
    const bySeq = Number(/rolled a, b back to seq (\d+) /.exec(byTime.stdout)?.[1]);
    expect(bySeq).toBeGreaterThanOrEqual(8);
    for (const v of ['a', 'b']) expect(production(store, v).equals(model.at(v, bySeq)), v).toBe(true);
    const same = await rewind('rollback', store, '--all', '--tx', '5');
    const again = await rewind('rollback', store, '--all', '--tx', '5', '--json');
    expect(same.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ firstSeq: null, lastSeq: null, bytesWritten: 0 });
    expect(again.code).toBe(0);
  });

  it('refuses bad arguments (exit 2) and a missing store (exit 3), changing nothing', async () => {
    const { store, model } = await history();
    const cases: [string[], number, RegExp][] = [
      [['--seq', '3'], 2, /exactly one of --volume NAME or --all/],
      [['--volume', 'a', '--all', '--seq', '3'], 2, /exactly one of --volume NAME or --all/],
      [['--volume', 'nope', '--seq', '3'], 2, /unknown volume "nope" \(volumes: a, b\)/],
      [['--volume', 'a'], 2, /exactly one of --seq N, --time ISO or --tx ID/],
      [['--volume', 'a', '--seq', '3', '--tx', '1'], 2, /exactly one of --seq N/],
      [['--volume', 'a', '--seq', '99'], 2, /seq 99 is after the newest write \(seq 40\)/],
      [['--volume', 'a', '--seq', '-1'], 2, /--seq "-1" must be a whole number/],
      [['--volume', 'a', '--tx', '77'], 2, /transaction 77 does not exist/],
      [['--volume', 'a', '--time', 'yesterday'], 2, /not an ISO 8601 time/],
      [['--volume', 'a', '--time', '2000-01-01T00:00:00Z'], 2, /before the oldest retained point/],
      [['--volume', 'a', '--seq', '3', '--bogus'], 2, /unknown option '--bogus'/],
    ];
    for (const [args, code, message] of cases) {
      const r = await rewind('rollback', store, ...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    const missing = await rewind('rollback', path.join(path.dirname(store), 'nothing'), '--all', '--seq', '1');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/not a rewind store/);
    const status = JSON.parse((await rewind('status', store, '--json')).stdout);
    expect(status.lastSeq).toBe(40);
    for (const v of ['a', 'b']) expect(production(store, v).equals(model.at(v, 40))).toBe(true);
  });

  it('with `rewind serve` running refuses (exit 3) naming its pid and saying to stop it; after the stop it works', async () => {
    const { store, model } = await history();
    const served = await startServe(store);
    const r = await rewind('rollback', store, '--volume', 'b', '--seq', '10');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`process ${served.proc.pid}`);
    expect(r.stderr).toMatch(/stop it first.*nothing was changed/);
    expect((await served.stop()).code).toBe(0);
    expect(production(store, 'b').equals(model.at('b', 40))).toBe(true);
    const after = await rewind('rollback', store, '--volume', 'b', '--seq', '10');
    expect(after.code).toBe(0);
    expect(production(store, 'b').equals(model.at('b', 10))).toBe(true);
  });

  it('is listed in --help with its options', async () => {
    const top = await rewind('--help');
    expect(top.stdout).toMatch(/^\s+rollback /m);
    const help = await rewind('rollback', '--help');
    expect(help.code).toBe(0);
    for (const opt of ['--volume', '--all', '--seq', '--time', '--tx', '--json']) expect(help.stdout).toContain(opt);
  });
});
