// The command line on a store whose retention policy has retired part of its history (built with the
// library and a manual clock ending now, then closed): `restore` at a point no longer held exits 2
// naming the oldest restorable point and the nearest held points on both sides, and writes nothing;
// with --nearest it restores the nearest held point at or before the target and says which (JSON and
// text); a held target says nearest false; `clone create` refuses or, with --nearest, takes the same
// nearest point; `log --json` gives every retained point its granularity.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rewind as runRewind, type Ran } from '../helpers/processes.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retiredHistory, VOLUME, type RetiredHistory } from '../helpers/retired-history.js';

/** The `rewind` command as a user runs it. */
const rewind = (...args: string[]): Promise<Ran> => runRewind(args);

let h: RetiredHistory;
let outDir: string;
/** The time of the end of window `id` as the store says it (its last write, 3 s after its first). */
const endTime = (id: number) => new Date(h.windowStart[id] + 3000).toISOString();

beforeAll(async () => {
  // Whole seconds up to now, so every write is in the past for the command's own clock.
  h = await retiredHistory(Math.floor(Date.now() / 1000) * 1000);
  await h.store.close();
  outDir = path.join(path.dirname(h.dir), 'out');
  fs.mkdirSync(outDir);
});

afterAll(() => {
  if (h) fs.rmSync(path.dirname(h.dir), { recursive: true, force: true });
});

function expectVolumeAt(file: string, seq: number): void {
  const got = fs.readFileSync(file);
  const want = h.model.at(VOLUME, seq);
  expect(got.byteLength).toBe(want.byteLength);
  expect(got.equals(want), `${file} should be the volume after seq ${seq}`).toBe(true);
}

describe('restore at a point no longer held', () => {
  it.each<[string, () => string[]]>([
    ['--seq inside a merged pack', () => ['--seq', String(h.windowEnd(4))]],
    ['--tx of a window inside a merged pack', () => ['--tx', '4']],
    ['--time inside a window whose writes are retired', () => ['--time', new Date(h.windowStart[5] + 1500).toISOString()]],
  ])('%s: exits 2 naming the oldest point and the nearest held ones, and writes no file', async (_what, target) => {
    const out = path.join(outDir, `refused-${target()[0].slice(2)}.img`);
    const r = await rewind('restore', h.dir, '--volume', VOLUME, ...target(), '--out', out);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('is no longer held');
    expect(r.stderr).toContain(`the oldest restorable point is seq ${h.windowEnd(3)} (${endTime(3)})`);
    expect(r.stderr).toContain(`before it: seq ${h.windowEnd(3)} (${endTime(3)}); after it: seq ${h.windowEnd(6)} (${endTime(6)})`);
    expect(r.stdout).toBe('');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a seq older than the oldest point names it and the one after', async () => {
    const r = await rewind('restore', h.dir, '--volume', VOLUME, '--seq', '2', '--out', path.join(outDir, 'old.img'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`seq 2 is no longer held`);
    expect(r.stderr).toContain(`the oldest restorable point is seq ${h.windowEnd(3)} (${endTime(3)}); nearest held points after it: seq ${h.windowEnd(3)}`);
  });

  it('--nearest restores the nearest held point at or before the target and says which (JSON)', async () => {
    const out = path.join(outDir, 'nearest.img');
    const requested = h.windowEnd(4) + 1;
    const r = await rewind('restore', h.dir, '--volume', VOLUME, '--seq', String(requested), '--nearest', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ volume: VOLUME, seq: h.windowEnd(3), time: endTime(3), requested: `seq ${requested}`, nearest: true, bytes: h.model.sizes[VOLUME], out });
    expect(typeof j.seconds).toBe('number');
    expectVolumeAt(out, h.windowEnd(3));
  });

  it('--nearest in text says which point it restored', async () => {
    const out = path.join(outDir, 'nearest-text.img');
    const r = await rewind('restore', h.dir, '--volume', VOLUME, '--tx', '8', '--nearest', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`restored ${VOLUME} as of seq ${h.windowEnd(6)} (${endTime(6)}) — the nearest held point at or before transaction 8`);
    expectVolumeAt(out, h.windowEnd(6));
  });

  it('a held target restores itself, with or without --nearest: nearest false', async () => {
    const seq = h.windowEnd(15) - 1; // a single write the journal still holds
    const out = path.join(outDir, 'held.img');
    const r = await rewind('restore', h.dir, '--volume', VOLUME, '--seq', String(seq), '--nearest', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ seq, requested: `seq ${seq}`, nearest: false, time: new Date(h.model.writes[seq - 1].time).toISOString() });
    expectVolumeAt(out, seq);
    const tx = await rewind('restore', h.dir, '--volume', VOLUME, '--tx', '9', '--out', out, '--json');
    expect(tx.code, tx.stderr).toBe(0);
    expect(JSON.parse(tx.stdout)).toMatchObject({ seq: h.windowEnd(9), time: endTime(9), requested: 'tx 9', nearest: false });
    expectVolumeAt(out, h.windowEnd(9));
  });
});

describe('clone create at a point no longer held', () => {
  it('exits 2 naming the held points and creates nothing; --nearest clones the one before and says so', async () => {
    const refused = await rewind('clone', 'create', h.dir, 'old', '--volume', VOLUME, '--tx', '8');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`after it: seq ${h.windowEnd(9)} (${endTime(9)}); --nearest`);
    expect(refused.stdout).toBe('');
    expect((await rewind('clone', 'list', h.dir, '--json')).stdout).toBe('[]\n');

    const j = await rewind('clone', 'create', h.dir, 'old', '--volume', VOLUME, '--tx', '8', '--nearest', '--json');
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ name: 'old', volume: VOLUME, seq: h.windowEnd(6), time: endTime(6), requested: 'tx 8', nearest: true });
    const t = await rewind('clone', 'create', h.dir, 'old2', '--volume', VOLUME, '--seq', String(h.windowEnd(4) + 1), '--nearest');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain(`created clone old2 of ${VOLUME} at seq ${h.windowEnd(3)} (${endTime(3)}) — the nearest held point at or before seq ${h.windowEnd(4) + 1}`);
    const held = await rewind('clone', 'create', h.dir, 'held', '--volume', VOLUME, '--tx', '9', '--nearest', '--json');
    expect(JSON.parse(held.stdout)).toMatchObject({ seq: h.windowEnd(9), requested: 'tx 9', nearest: false });
    for (const name of ['old', 'old2', 'held']) expect((await rewind('clone', 'delete', h.dir, name)).code).toBe(0);
  });
});

describe('log', () => {
  it('--json gives each retained point its granularity; the text has a granularity column', async () => {
    const r = await rewind('log', h.dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as { id: number; firstSeq: number; lastSeq: number; granularity: string; windows: number }[];
    expect(log.map((e) => [e.id, e.firstSeq, e.lastSeq, e.granularity, e.windows])).toEqual([
      [3, 9, 12, 'window', 1],
      [6, 13, 24, 'hourly', 3],
      [9, 25, 36, 'hourly', 3],
      [12, 37, 48, 'hourly', 3],
      [13, 49, 52, 'window', 1],
      [14, 53, 56, 'window', 1],
      [15, 57, 60, 'writes', 1],
      [16, 61, 64, 'writes', 1],
    ]);
    const text = await rewind('log', h.dir);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(1 + log.length);
    expect(lines[0]).toMatch(/ granularity$/);
    expect(lines[2]).toMatch(/ hourly \(3 windows\)$/);
    expect(lines[8]).toMatch(/ writes$/);
  });
});
