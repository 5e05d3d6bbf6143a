// Clones end to end: `rewind clone create` while `rewind serve` runs, the clone exported read-write
// under its name at once, written and read back by real clients (qemu-io, nbdsh, nbdcopy), the volume
// unchanged by it; `clone list`, `--max-bytes` as ENOSPC to the client, delete refused while a client
// is connected, and the bad input of every flag.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import { RawClient } from '../nbd/raw-client.js';
import { initStore, MiB, nbdshEnv, ok, removeTempDirs, rewind, run, sha256, startServe, statusUntil, stopAll, tempDir, uri } from './harness.js';

const SIZE = 16 * MiB;

describe('rewind clone with rewind serve', () => {
  afterEach((ctx) => stopAll(ctx));
  afterAll(removeTempDirs);

  it('exports a clone made while serving, read-write, and keeps the volume as it was', async (ctx) => {
    if (!requireTool('nbdcopy') || !requireTool('qemu-io') || !requireTool('nbdsh')) ctx.skip();
    const dir = tempDir();
    const store = path.join(dir, 'store');
    await initStore(store, 'disk0:16M', 'time:200ms');
    const srv = await startServe(store);
    const first = randomBytes(SIZE);
    const src = path.join(dir, 'first.img');
    writeFileSync(src, first);
    ok(await run('nbdcopy', ['--flush', src, uri(srv.port, 'disk0')]));
    const at = await statusUntil(store, (s) => s.appliedSeq === s.lastSeq && s.lastSeq > 0);
    // Later writes to the volume: the clone must not see them.
    ok(await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 1M', '-c', 'flush', uri(srv.port, 'disk0')]));
    const volumeBefore = path.join(dir, 'volume-before.img');
    ok(await run('nbdcopy', [uri(srv.port, 'disk0'), volumeBefore]));

    const created = JSON.parse(ok(await rewind(['clone', 'create', store, 'test1', '--volume', 'disk0', '--seq', String(at.lastSeq), '--json'])).stdout);
    expect(created).toMatchObject({ name: 'test1', volume: 'disk0', seq: at.lastSeq, maxBytes: null });
    const listed = ok(await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${srv.port}`])).stdout;
    expect((JSON.parse(listed) as { exports: { 'export-name': string }[] }).exports.map((e) => e['export-name'])).toEqual(['disk0', 'test1']);
    const back = path.join(dir, 'back.img');
    ok(await run('nbdcopy', [uri(srv.port, 'test1'), back]));
    expect(sha256(readFileSync(back))).toBe(sha256(first));

    // qemu-io writes (unaligned, FUA, zeroes), nbdsh reads them back over its own connection.
    ok(await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xa5 1000 3000', '-c', 'write -f -P 0x5a 5M 64k', '-c', 'write -z 8M 1M', '-c', 'flush', uri(srv.port, 'test1')]));
    const expected = Buffer.from(first);
    expected.fill(0xa5, 1000, 4000);
    expected.fill(0x5a, 5 * MiB, 5 * MiB + 65536);
    expected.fill(0, 8 * MiB, 9 * MiB);
    const script = `h.connect_uri(${JSON.stringify(uri(srv.port, 'test1'))})\nimport hashlib,sys\nsys.stdout.write(hashlib.sha256(h.pread(${SIZE}, 0)).hexdigest())`;
    const r = ok(await run('nbdsh', ['-c', script], { env: nbdshEnv() }));
    expect(r.stdout.trim()).toBe(sha256(expected));

    // The volume is as it was (the clone's writes went nowhere near it), and so is its history.
    ok(await run('nbdcopy', [uri(srv.port, 'disk0'), back]));
    expect(sha256(readFileSync(back))).toBe(sha256(readFileSync(volumeBefore)));
    ok(await run('nbdcopy', [uri(srv.port, `disk0@seq=${at.lastSeq}`), back]));
    expect(sha256(readFileSync(back))).toBe(sha256(first));

    const list = JSON.parse(ok(await rewind(['clone', 'list', store, '--json'])).stdout);
    expect(list).toMatchObject([{ name: 'test1', volume: 'disk0', seq: at.lastSeq, openBy: [] }]);
    expect(list[0].usedBytes).toBeGreaterThanOrEqual(3000 + 65536 + MiB);
    expect(ok(await rewind(['status', store])).stdout).toMatch(/clones +test1 \(disk0 at seq \d+\)/);

    // Delete is refused while a client is connected, and works once it is gone.
    const { client } = await RawClient.open(srv.port, 'test1');
    const refused = await rewind(['clone', 'delete', store, 'test1']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/clone "test1" is in use by process \d+ \(rewind serve exporting it to a client\): disconnect its NBD clients/);
    await client.disconnect();
    // The server closes the clone (flushing it) once the client is gone.
    await until(async () => JSON.parse(ok(await rewind(['clone', 'list', store, '--json'])).stdout)[0].openBy.length === 0, { what: 'the server closed the clone' });
    const deleted = await rewind(['clone', 'delete', store, 'test1', '--json']);
    expect(JSON.parse(ok(deleted).stdout)).toEqual({ name: 'test1', deleted: true, leftovers: false });
    const gone = await run('nbdinfo', [uri(srv.port, 'test1')]);
    expect(gone.code).not.toBe(0);
    expect(ok(await rewind(['clone', 'list', store])).stdout).toBe('no clones\n');
  });

  it('gives a client ENOSPC past --max-bytes', async (ctx) => {
    if (!requireTool('qemu-io')) ctx.skip();
    const dir = tempDir();
    const store = path.join(dir, 'store');
    await initStore(store, 'disk0:16M', 'count:10');
    ok(await rewind(['clone', 'create', store, 'small', '--volume', 'disk0', '--seq', '0', '--max-bytes', '64K']));
    const srv = await startServe(store);
    ok(await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 64k', '-c', 'flush', uri(srv.port, 'small')]));
    const full = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 2 1M 4k', uri(srv.port, 'small')]);
    expect(full.stdout + full.stderr).toMatch(/No space left on device/);
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 1 0 64k', '-c', 'read -P 0 1M 4k', uri(srv.port, 'small')]);
    expect(ok(r).stdout).not.toMatch(/Pattern verification failed/);
  });

  it('refuses bad input with a clear message and changes nothing', async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    await initStore(store, 'disk0:16M', 'count:10');
    const cases: [string[], number, RegExp][] = [
      [['clone', 'create', store, 'c1', '--volume', 'disk0'], 2, /give exactly one of --seq N, --time ISO or --tx ID/],
      [['clone', 'create', store, 'c1', '--volume', 'disk0', '--seq', '1', '--tx', '1'], 2, /got --seq and --tx/],
      [['clone', 'create', store, 'c1', '--volume', 'disk0', '--seq', 'x'], 2, /--seq "x" must be a whole number/],
      [['clone', 'create', store, 'c1', '--volume', 'disk0', '--seq', '5'], 2, /seq 5 is after the newest write/],
      [['clone', 'create', store, 'c1', '--volume', 'disk0', '--time', 'yesterday'], 2, /not an ISO 8601 time/],
      [['clone', 'create', store, 'c1', '--volume', 'nope', '--seq', '0'], 2, /unknown volume "nope"/],
      [['clone', 'create', store, 'c1', '--volume', 'disk0', '--seq', '0', '--max-bytes', 'lots'], 2, /--max-bytes: "lots" is not a size/],
      [['clone', 'create', store, 'c1', '--volume', 'disk0', '--seq', '0', '--max-bytes', '100'], 2, /at least one block/],
      [['clone', 'create', store, 'a@b', '--volume', 'disk0', '--seq', '0'], 2, /clone name "a@b" must be/],
      [['clone', 'create', store, 'disk0', '--volume', 'disk0', '--seq', '0'], 2, /is the name of a volume/],
      [['clone', 'create', store, 'c1', '--seq', '0'], 2, /required option '--volume <name>'/],
      [['clone', 'create', path.join(dir, 'none'), 'c1', '--volume', 'disk0', '--seq', '0'], 3, /./],
      [['clone', 'delete', store, 'c1'], 2, /no clone "c1" \(clones: none\)/],
    ];
    for (const [args, code, re] of cases) {
      const r = await rewind(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(re);
    }
    expect(ok(await rewind(['clone', 'list', store, '--json'])).stdout).toBe('[]\n');
  });
});
