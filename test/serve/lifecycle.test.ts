// `rewind serve` end to end (GitHub issue 3): created store, exports listed, clean shutdown on
// SIGTERM with every write applied, and the Unix socket. The real bin runs as a child process.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { GiB, KiB, MiB, ok, removeTempDirs, rewind, run, startServe, status, statusUntil, stopAll, tempDir, uri } from './harness.js';

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

describe('rewind serve: lifecycle', () => {
  it('creates a missing store with a 1 GiB disk0, lists it, and on SIGTERM applies every write, exits 0 and verifies', async (ctx) => {
    if (!requireTool('nbdinfo') || !requireTool('qemu-io')) ctx.skip();
    const dir = tempDir();
    const store = path.join(dir, 'store'); // does not exist yet
    const srv = await startServe(store);
    expect(srv.stderr()).toMatch(/created store .* with volume disk0 \(1 GiB\)/);

    const list = JSON.parse(ok(await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${srv.port}`])).stdout);
    expect(list.exports.map((e: Record<string, unknown>) => e['export-name'])).toEqual(['disk0']);
    expect(list.exports[0]).toMatchObject({ 'export-size': GiB, is_read_only: false });

    // Seven writes, one NBD write request each (qemu-io sends each command as one request).
    const cmds = ['write -P 0x11 0 64k', 'write -P 0x22 1M 4k', 'write -P 0x33 512M 64k', 'write -P 0x44 1023M 1M', 'write -P 0x55 100 300', 'write -P 0x66 4k 4k', 'write -P 0x77 1073737728 4k'];
    ok(await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri(srv.port, 'disk0')]));
    const during = await statusUntil(store, (s) => s.lastSeq === cmds.length);
    expect(during.volumes).toEqual([{ name: 'disk0', size: GiB }]);

    const exit = await srv.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(srv.stderr()).toMatch(/SIGTERM: finishing requests in flight/);
    expect(srv.stderr()).toMatch(/closed cleanly\s*$/);

    const after = await status(store);
    expect(after.lastSeq).toBe(cmds.length);
    expect(after.appliedSeq).toBe(after.lastSeq);
    expect(after.transactions).toBeGreaterThanOrEqual(1);
    const v = await rewind(['verify', store], 60_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);

    // The store holds exactly what was written: restore the last point and check a few ranges.
    const out = path.join(dir, 'last.img');
    ok(await rewind(['restore', store, '--volume', 'disk0', '--seq', String(after.lastSeq), '--out', out], 60_000));
    const img = readFileSync(out);
    expect(img.length).toBe(GiB);
    const expectRange = (off: number, len: number, byte: number) => expect(img.subarray(off, off + len).equals(Buffer.alloc(len, byte)), `${off}+${len} = 0x${byte.toString(16)}`).toBe(true);
    expectRange(0, 100, 0x11);
    expectRange(100, 300, 0x55);
    expectRange(400, 4 * KiB - 400, 0x11);
    expectRange(4 * KiB, 4 * KiB, 0x66);
    expectRange(8 * KiB, 56 * KiB, 0x11);
    expectRange(64 * KiB, MiB - 64 * KiB, 0);
    expectRange(MiB, 4 * KiB, 0x22);
    expectRange(512 * MiB, 64 * KiB, 0x33);
    expectRange(1023 * MiB, MiB - 4 * KiB, 0x44);
    expectRange(GiB - 4 * KiB, 4 * KiB, 0x77);
  });

  it('--socket serves the same exports on a Unix socket as well as on TCP', async (ctx) => {
    if (!requireTool('nbdinfo')) ctx.skip();
    const dir = tempDir();
    const store = path.join(dir, 's');
    ok(await rewind(['init', store, '--volume', 'disk0:8M', '--window', 'count:50']));
    const sock = path.join(dir, 'nbd.sock');
    const srv = await startServe(store, ['--socket', sock]);
    expect(srv.stderr()).toContain(` and ${sock}`);
    const viaUnix = JSON.parse(ok(await run('nbdinfo', ['--json', `nbd+unix:///disk0?socket=${sock}`])).stdout);
    expect(viaUnix.exports[0]).toMatchObject({ 'export-name': 'disk0', 'export-size': 8 * MiB, is_read_only: false });
    const listUnix = JSON.parse(ok(await run('nbdinfo', ['--list', '--json', `nbd+unix://?socket=${sock}`])).stdout);
    expect(listUnix.exports.map((e: Record<string, unknown>) => e['export-name'])).toEqual(['disk0']);
    const viewUnix = JSON.parse(ok(await run('nbdinfo', ['--json', `nbd+unix:///disk0%40seq%3D0?socket=${sock}`])).stdout);
    expect(viewUnix.exports[0]).toMatchObject({ 'export-name': 'disk0@seq=0', 'export-size': 8 * MiB, is_read_only: true });
    const viaTcp = JSON.parse(ok(await run('nbdinfo', ['--json', uri(srv.port, 'disk0')])).stdout);
    expect(viaTcp.exports[0]).toMatchObject({ 'export-name': 'disk0', 'export-size': 8 * MiB });
    expect(await srv.stop()).toEqual({ code: 0, signal: null });
  });
});
