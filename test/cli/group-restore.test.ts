// `rewind restore --all` and `--dry-run`, run as a user runs them (the real bin on a store of three
// volumes): --all writes DIR/<volume>.img for every volume at one point (by seq, tx or time), the
// files exactly the volumes there and nothing else left in DIR; existing files are refused without
// --force (exit 2, nothing changed) and replaced with it; --dry-run prints the plan (what would be
// read and written, an estimate with the rates it measured) and writes nothing, with or without
// --all; every bad combination of flags exits 2 with a message and changes nothing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rewind as runRewind, type Ran } from '../helpers/processes.js';
import { SET_VOLUMES, volumeSetHistory, type VolumeSetHistory } from '../helpers/volume-set-history.js';

const rewind = (...args: string[]): Promise<Ran> => runRewind(args);

let h: VolumeSetHistory;
const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-group-out-'));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  h = await volumeSetHistory({ writes: 60, windowWrites: 10, unapplied: 5 });
});
afterAll(() => h?.remove());
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function expectSetAt(dir: string, seq: number): void {
  expect(fs.readdirSync(dir).sort()).toEqual(SET_VOLUMES.map((v) => `${v.name}.img`).sort());
  for (const v of SET_VOLUMES) {
    const got = fs.readFileSync(path.join(dir, `${v.name}.img`));
    expect(got.equals(h.model.at(v.name, seq)), `${v.name}.img should be volume ${v.name} after seq ${seq}`).toBe(true);
  }
}

describe('restore --all', () => {
  it('--seq writes every volume at that one point, each DIR/<volume>.img, and nothing else (JSON)', async () => {
    for (const seq of [0, 23, 40, 58]) {
      const out = path.join(tmp(), 'set');
      const r = await rewind('restore', h.dir, '--all', '--seq', String(seq), '--out-dir', out, '--json');
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j).toMatchObject({ seq, requested: `seq ${seq}`, nearest: false, outDir: out, bytes: SET_VOLUMES.reduce((s, v) => s + v.size, 0) });
      expect(j.volumes).toEqual(SET_VOLUMES.map((v) => ({ volume: v.name, out: path.join(out, `${v.name}.img`), bytes: v.size })));
      expectSetAt(out, seq);
    }
  });

  it('--tx and --time resolve once, to one seq for all volumes (text)', async () => {
    const out = tmp();
    const tx = await rewind('restore', h.dir, '--all', '--tx', '3', '--out-dir', out);
    expect(tx.code, tx.stderr).toBe(0);
    expect(tx.stdout).toContain(`restored 3 volumes as of seq ${h.windowEnds[2]}`);
    expect(tx.stdout).toContain(' — transaction 3 to ');
    expectSetAt(out, h.windowEnds[2]);
    const seq = 37;
    const again = await rewind('restore', h.dir, '--all', '--time', new Date(h.timeOfSeq[seq]).toISOString(), '--out-dir', out, '--force', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).seq).toBe(seq);
    expectSetAt(out, seq);
  });

  it('refuses existing files without --force (exit 2, nothing changed) and replaces them with it', async () => {
    const out = tmp();
    const existing = path.join(out, 'logs.img');
    fs.writeFileSync(existing, 'keep me');
    const r = await rewind('restore', h.dir, '--all', '--seq', '12', '--out-dir', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${existing} exists already; --force replaces it`);
    expect(fs.readdirSync(out)).toEqual(['logs.img']);
    expect(fs.readFileSync(existing, 'utf8')).toBe('keep me');
    const forced = await rewind('restore', h.dir, '--all', '--seq', '12', '--out-dir', out, '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expectSetAt(out, 12);
  });

  it('a target no longer there is refused before anything is written', async () => {
    const out = path.join(tmp(), 'set');
    const r = await rewind('restore', h.dir, '--all', '--seq', String(h.lastSeq + 1), '--out-dir', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`seq ${h.lastSeq + 1} is after the newest write (seq ${h.lastSeq})`);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('restore --dry-run', () => {
  it('--all prints the plan as JSON and writes nothing: replica, packs and journal to read per volume, an estimate', async () => {
    const out = path.join(tmp(), 'never');
    const seq = 23;
    const r = await rewind('restore', h.dir, '--all', '--seq', String(seq), '--out-dir', out, '--dry-run', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(out)).toBe(false);
    const p = JSON.parse(r.stdout);
    expect(p).toMatchObject({ dryRun: true, seq, requested: `seq ${seq}`, nearest: false, outDir: out });
    // The packs after seq 23: windows 3..5 (ending 30, 40, 50); the base is seq 20, so writes 21..23 are replayed.
    const packs = h.windowEnds.filter((e) => e > seq).length;
    const pack = fs.readdirSync(path.join(h.dir, 'increments')).filter((f) => f.endsWith('.pack'));
    const packBytes = pack.filter((f) => Number(f.split('-')[1].split('.')[0]) > seq).reduce((s, f) => s + fs.statSync(path.join(h.dir, 'increments', f)).size, 0);
    expect(p.volumes).toHaveLength(3);
    for (const [i, v] of SET_VOLUMES.entries()) {
      const writes = h.model.writes.filter((w) => w.seq > 20 && w.seq <= seq && w.volume === v.name);
      expect(p.volumes[i]).toEqual({
        volume: v.name, out: path.join(out, `${v.name}.img`), replicaBytes: v.size, packs, packBytes,
        journalWrites: writes.length, journalBytes: writes.reduce((s, w) => s + 48 + w.data.byteLength, 0), writeBytes: v.size,
      });
    }
    expect(p.packBytes).toBe(3 * packBytes);
    expect(p.writeBytes).toBe(SET_VOLUMES.reduce((s, v) => s + v.size, 0));
    expect(p.rates.measuredReplicaBytes).toBe(SET_VOLUMES[0].size);
    expect(p.rates.measuredPackBytes).toBeGreaterThan(0);
    expect(p.estimatedSeconds).toBeGreaterThan(0);
    expect(p.estimatedSeconds).toBeLessThan(60);
  });

  it('a single volume, in text: the plan, the estimate and the rates it comes from; --out is not created', async () => {
    const out = path.join(tmp(), 'db.img');
    const r = await rewind('restore', h.dir, '--volume', 'db', '--tx', '2', '--out', out, '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(out)).toBe(false);
    expect(r.stdout).toContain(`dry run: would restore 1 volume as of seq ${h.windowEnds[1]}`);
    expect(r.stdout).toContain('nothing written');
    expect(r.stdout).toMatch(new RegExp(`db -> ${out}: read replica 256 KiB, 3 packs .*; write up to 256 KiB`));
    expect(r.stdout).toMatch(/^estimate: [\d.]+ s, from read rates measured just now \(replica .* over 256 KiB, packs .*\)/m);
  });

  it('refuses what the restore would refuse: existing files without --force', async () => {
    const out = tmp();
    fs.writeFileSync(path.join(out, 'db.img'), '');
    const r = await rewind('restore', h.dir, '--all', '--seq', '5', '--out-dir', out, '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exists already; --force replaces it');
  });
});

describe('restore: bad flags exit 2 and change nothing', () => {
  it.each<[string, string[], RegExp]>([
    ['neither --volume nor --all', ['--seq', '1', '--out', 'x.img'], /give --volume NAME \(one volume, with --out FILE\) or --all/],
    ['both --volume and --all', ['--volume', 'db', '--all', '--seq', '1', '--out-dir', 'd'], /give --volume NAME .* or --all/],
    ['--all without --out-dir', ['--all', '--seq', '1'], /--all needs --out-dir DIR/],
    ['--all with --out', ['--all', '--seq', '1', '--out', 'x.img'], /--all writes one file per volume: give --out-dir DIR instead of --out/],
    ['--out-dir without --all', ['--volume', 'db', '--seq', '1', '--out-dir', 'd'], /--out-dir goes with --all/],
    ['--force without --all', ['--volume', 'db', '--seq', '1', '--out', 'x.img', '--force'], /--force goes with --all --out-dir/],
    ['--volume without --out', ['--volume', 'db', '--seq', '1'], /--volume needs --out FILE/],
    ['--all with no target', ['--all', '--out-dir', 'd'], /give exactly one of --seq N, --time ISO or --tx ID/],
    ['--all with two targets', ['--all', '--seq', '1', '--tx', '1', '--out-dir', 'd'], /got --seq and --tx/],
    ['--dry-run with an unknown volume', ['--volume', 'zz', '--seq', '1', '--out', 'x.img', '--dry-run'], /unknown volume "zz" \(volumes: db, logs, cfg\)/],
  ])('%s', async (_, args, message) => {
    const cwd = tmp();
    const r = await rewind('restore', h.dir, ...args.map((a) => (a === 'd' || a === 'x.img' ? path.join(cwd, a) : a)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it('--out-dir that is a file', async () => {
    const file = path.join(tmp(), 'plain');
    fs.writeFileSync(file, 'x');
    const r = await rewind('restore', h.dir, '--all', '--seq', '3', '--out-dir', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out-dir ${file}: cannot create it as a directory`);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });
});
