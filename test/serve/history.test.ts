// `rewind serve` end to end (GitHub issue 3): data written over NBD reads back identical, and past
// points are exports. One server runs for the whole describe; "snapshots" are taken after each of
// several write rounds (status from another process + a copy of the read-write export), and every
// past point is then read back through `<volume>@seq=<N>`, `<volume>@time=<ISO>` and `rewind
// restore` run while the server keeps running.

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import {
  dumpOnFailure,
  KiB,
  MiB,
  nbdshEnv,
  ok,
  removeTempDirs,
  rewind,
  run,
  sha256,
  startChild,
  startServe,
  status,
  statusUntil,
  stopAll,
  tempDir,
  initStore,
  uri,
  type Served,
} from './harness.js';
import { prng } from '../../src/prng.js';

// Every store here gets less than 64 MiB of writes in all: a journal segment (LIMITS.segmentBytesMax)
// is never sealed, which keeps these tests clear of the rotation bug that known-bugs.test.ts shows.
const SIZE = 32 * MiB;

describe('rewind serve: read-write export', () => {
  afterEach((ctx) => stopAll(ctx));
  afterAll(removeTempDirs);

  it('nbdcopy and qemu-io write through the export and read back identical (window time:200ms)', async (ctx) => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io') || !requireTool('qemu-img')) ctx.skip();
    const dir = tempDir();
    const store = path.join(dir, 'store');
    await initStore(store, 'disk0:32M', 'time:200ms');
    const srv = await startServe(store);
    const image = randomBytes(SIZE);
    image.fill(0, 8 * MiB, 12 * MiB); // zeroes nbdcopy may send as WRITE_ZEROES or skip
    const src = path.join(dir, 'src.img');
    writeFileSync(src, image);
    ok(await run('nbdcopy', ['--flush', src, uri(srv.port, 'disk0')]));
    const back = path.join(dir, 'back.img');
    ok(await run('nbdcopy', [uri(srv.port, 'disk0'), back]));
    expect(sha256(readFileSync(back))).toBe(sha256(image));

    // Unaligned and FUA writes, write-zeroes and a discard (a hint: data stays) from qemu-io.
    const cmds = ['write -P 0xa5 1000 3000', 'write -f -P 0x5a 5M 64k', 'write -z 20M 1M', 'discard 30M 64k', 'flush', 'aio_write -P 0x3c 24M 128k', 'aio_write -P 0xc3 24M 4k', 'aio_flush'];
    ok(await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri(srv.port, 'disk0')]));
    image.fill(0xa5, 1000, 4000);
    image.fill(0x5a, 5 * MiB, 5 * MiB + 64 * KiB);
    image.fill(0, 20 * MiB, 21 * MiB);
    image.fill(0x3c, 24 * MiB, 24 * MiB + 128 * KiB);
    image.fill(0xc3, 24 * MiB, 24 * MiB + 4 * KiB); // aio writes to one connection run in order on the server
    writeFileSync(src, image);
    ok(await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, uri(srv.port, 'disk0')]));
    ok(await run('nbdcopy', [uri(srv.port, 'disk0'), back]));
    expect(sha256(readFileSync(back))).toBe(sha256(image));

    // Time windows close by themselves: everything gets applied while the server idles.
    const s = await statusUntil(store, (x) => x.appliedSeq === x.lastSeq && x.lastSeq > 0, 10_000);
    expect(s.transactions).toBeGreaterThanOrEqual(1);
    // The applied point, read as a view, is the same image.
    ok(await run('nbdcopy', [uri(srv.port, `disk0@seq=${s.lastSeq}`), back]));
    expect(sha256(readFileSync(back))).toBe(sha256(image));
  });
});

interface Snapshot {
  seq: number;
  time: string | null;
  file: string;
  hash: string;
}

describe('rewind serve: past points as exports (window count:50)', () => {
  let dir: string;
  let store: string;
  let srv: Served;
  const snaps: Snapshot[] = [];
  let round = 0;
  const unit = prng(0x5eed);
  const random = () => Math.floor(unit() * 2 ** 32);

  /** One round of writes: about 60-90 qemu-io writes (random data, patterns, zeroes) at random offsets. */
  async function writeRound(): Promise<void> {
    round++;
    const pat = path.join(dir, `pat${round}.bin`);
    writeFileSync(pat, randomBytes(256 * KiB));
    const cmds: string[] = [];
    const n = 60 + (random() % 30);
    for (let i = 0; i < n; i++) {
      const len = 1 + (random() % (random() % 4 === 0 ? 256 * KiB : 16 * KiB));
      const off = random() % (SIZE - len);
      const kind = random() % 8;
      if (kind === 0) cmds.push(`write -z ${off} ${len}`);
      else if (kind < 4) cmds.push(`write -P 0x${(random() % 256).toString(16)} ${off} ${len}`);
      else cmds.push(`write -s ${pat} ${off} ${len}`);
    }
    ok(await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri(srv.port, 'disk0')]));
  }

  /** Status from another process, then a copy of the read-write export as it stands. */
  async function snapshot(): Promise<Snapshot> {
    const s = await status(store);
    const file = path.join(dir, `snap-${s.lastSeq}.img`);
    ok(await run('nbdcopy', [uri(srv.port, 'disk0'), file]));
    const snap = { seq: s.lastSeq, time: s.lastTime, file, hash: sha256(readFileSync(file)) };
    snaps.push(snap);
    // The next write must carry a later millisecond than this point's lastTime.
    const stamped = s.lastTime === null ? 0 : Date.parse(s.lastTime);
    await until(() => Date.now() > stamped);
    return snap;
  }

  async function nbdcopyHash(name: string): Promise<string> {
    const out = path.join(dir, 'read.img');
    ok(await run('nbdcopy', [uri(srv.port, name), out]));
    return sha256(readFileSync(out));
  }

  beforeAll(async () => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io')) return;
    dir = tempDir();
    store = path.join(dir, 'store');
    await initStore(store, 'disk0:32M', 'count:50');
    srv = await startServe(store);
    try {
      await takeSnapshots();
    } catch (err) {
      throw new Error(`${(err as Error).message}\nrewind serve stderr:\n${srv.stderr().slice(-8000)}`);
    }
  }, 60_000);

  async function takeSnapshots(): Promise<void> {
    await snapshot(); // seq 0: all zeroes
    // Round 1: a whole random image through nbdcopy (hundreds of writes), then qemu-io rounds.
    const img = path.join(dir, 'base.img');
    writeFileSync(img, randomBytes(SIZE));
    ok(await run('nbdcopy', [img, uri(srv.port, 'disk0')]));
    await snapshot();
    for (let i = 0; i < 3; i++) {
      await writeRound();
      await snapshot();
    }
  }

  afterEach((ctx) => dumpOnFailure(ctx));
  afterAll(async () => {
    await stopAll();
    removeTempDirs();
  });

  it('the rounds made distinct points and closed windows', async (ctx) => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io')) ctx.skip();
    expect(snaps.map((s) => s.seq)).toEqual([...snaps.map((s) => s.seq)].sort((a, b) => a - b));
    expect(new Set(snaps.map((s) => s.seq)).size).toBe(snaps.length);
    expect(new Set(snaps.map((s) => s.hash)).size).toBe(snaps.length);
    expect(snaps[0]).toMatchObject({ seq: 0, time: null, hash: sha256(Buffer.alloc(SIZE)) });
    const s = await status(store);
    expect(s.transactions).toBeGreaterThan(snaps.length);
    expect(s.appliedSeq).toBeGreaterThan(snaps[snaps.length - 2]!.seq);
  });

  it('"disk0@seq=N" equals the snapshot taken at seq N (percent-encoded and raw names)', async (ctx) => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io')) ctx.skip();
    for (const snap of snaps) expect(await nbdcopyHash(`disk0@seq=${snap.seq}`), `seq ${snap.seq}`).toBe(snap.hash);
    // The raw form of the name in the URI works too.
    const last = snaps[snaps.length - 1]!;
    const out = path.join(dir, 'raw.img');
    ok(await run('nbdcopy', [`nbd://127.0.0.1:${srv.port}/disk0@seq=${last.seq}`, out]));
    expect(sha256(readFileSync(out))).toBe(last.hash);
  });

  it('"disk0@time=ISO" equals the snapshot taken at that lastTime', async (ctx) => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io')) ctx.skip();
    for (const snap of snaps.filter((s) => s.time !== null)) {
      expect(await nbdcopyHash(`disk0@time=${snap.time}`), `time ${snap.time} (seq ${snap.seq})`).toBe(snap.hash);
    }
  });

  it('rewind restore --seq and --time, run while serve runs, equal the snapshots', async (ctx) => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io')) ctx.skip();
    for (const snap of snaps) {
      const out = path.join(dir, `restore-${snap.seq}.img`);
      ok(await rewind(['restore', store, '--volume', 'disk0', '--seq', String(snap.seq), '--out', out], 30_000));
      expect(sha256(readFileSync(out)), `restore --seq ${snap.seq}`).toBe(snap.hash);
      if (snap.time === null) continue;
      ok(await rewind(['restore', store, '--volume', 'disk0', '--time', snap.time, '--out', out], 30_000));
      expect(sha256(readFileSync(out)), `restore --time ${snap.time}`).toBe(snap.hash);
    }
    expect(srv.proc.exitCode).toBe(null);
  });

  it('a write to a "@seq=" or "@time=" export fails with EPERM and changes nothing', async (ctx) => {
    if (!requireTool('nbdsh') || !requireTool('nbdcopy') || !requireTool('qemu-io')) ctx.skip();
    const before = await status(store);
    const target = snaps[2]!;
    for (const name of [`disk0@seq=${target.seq}`, `disk0@time=${target.time}`]) {
      const script = [
        'h.set_strict_mode(0)',
        `h.connect_uri(${JSON.stringify(uri(srv.port, name))})`,
        "print('RO', h.is_read_only())",
        "for what, op in (('pwrite', lambda: h.pwrite(b'x' * 4096, 0)), ('zero', lambda: h.zero(4096, 8192)), ('trim', lambda: h.trim(4096, 8192))):",
        '    try:',
        '        op()',
        "        print(what, 'OK')",
        '    except nbd.Error as e:',
        "        print(what, 'ERROR', e.errno, e.string)",
        "print('READ', h.pread(16, 0).hex())",
      ].join('\n');
      const r = ok(await run('nbdsh', ['-c', script], { env: nbdshEnv() }));
      expect(r.stdout).toMatch(/^RO True$/m);
      expect(r.stdout).toMatch(/^pwrite ERROR EPERM .*Operation not permitted/m);
      expect(r.stdout).toMatch(/^zero ERROR EPERM /m);
      expect(r.stdout).toMatch(/^trim ERROR EPERM /m);
      expect(r.stdout).toContain(`READ ${readFileSync(target.file).subarray(0, 16).toString('hex')}`);
    }
    const after = await status(store);
    expect(after.lastSeq).toBe(before.lastSeq);
    expect(await nbdcopyHash(`disk0@seq=${target.seq}`)).toBe(target.hash);
    expect(await nbdcopyHash('disk0')).toBe(snaps[snaps.length - 1]!.hash);
  });

  it('a view opened before more writes and windows keeps returning the same bytes (one nbdsh session)', async (ctx) => {
    if (!requireTool('nbdsh') || !requireTool('nbdcopy') || !requireTool('qemu-io')) ctx.skip();
    // Views at the newest point (partly not applied yet), a middle one, and one by time.
    const latest = snaps[snaps.length - 1]!;
    const middle = snaps[2]!;
    const views: [string, string][] = [
      [`disk0@seq=${latest.seq}`, latest.hash],
      [`disk0@seq=${middle.seq}`, middle.hash],
      [`disk0@time=${snaps[3]!.time}`, snaps[3]!.hash],
    ];
    const script = [
      'import sys, hashlib',
      `uris = ${JSON.stringify(views.map(([n]) => uri(srv.port, n)))}`,
      'hs = []',
      'for u in uris:',
      '    x = nbd.NBD()',
      '    x.connect_uri(u)',
      '    hs.append(x)',
      'def digest(x):',
      '    m = hashlib.sha256()',
      '    size = x.get_size()',
      '    off = 0',
      '    while off < size:',
      '        n = min(4 << 20, size - off)',
      '        m.update(x.pread(n, off))',
      '        off += n',
      '    return m.hexdigest()',
      "print('BEFORE', ' '.join(digest(x) for x in hs), flush=True)",
      'sys.stdin.readline()',
      "print('AFTER', ' '.join(digest(x) for x in hs), flush=True)",
    ].join('\n');
    const child = startChild('nbdsh', ['-c', script], { env: nbdshEnv(), timeoutMs: 40_000 });
    const before = (await child.line(/^BEFORE (.*)\n/))[1]!.split(' ');
    expect(before).toEqual(views.map(([, h]) => h));

    const s0 = await status(store);
    for (let i = 0; i < 3; i++) await writeRound();
    // Wait until windows holding the new writes have been applied to the replica.
    const s1 = await statusUntil(store, (x) => x.appliedSeq >= s0.lastSeq + 100, 15_000);
    expect(s1.lastSeq).toBeGreaterThan(s0.lastSeq);
    child.proc.stdin!.end('\n');
    const after = (await child.line(/^AFTER (.*)\n/))[1]!.split(' ');
    expect(after).toEqual(views.map(([, h]) => h));
    // A fresh connection to the same points agrees, and the live export has moved on.
    for (const [name, hash] of views) expect(await nbdcopyHash(name), name).toBe(hash);
    expect(await nbdcopyHash('disk0')).not.toBe(latest.hash);
  });
});
