// Regressions found by the `rewind serve` end-to-end tests:
// 1. A journal segment sealed while a group-commit fsync was in flight was closed by that fsync's
//    completion although it still had unsynced writes; the next fsync failed on a closed file and
//    the journal refused every later write (EIO).
// 2. `rewind verify` read the index when it opened and listed the packs much later, so windows
//    applied by a running `rewind serve` in between were reported as damage.

import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { initStore, ok, removeTempDirs, rewind, run, startServe, status, stopAll, tempDir, uri } from './harness.js';

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

describe('rewind serve: regressions', () => {
  it('the journal seals a segment (64 MiB) during group commits without failing', async (ctx) => {
    if (!requireTool('fio')) ctx.skip();
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:128M', 'count:50');
    const srv = await startServe(store);
    // 100 MiB of random 64 KiB writes, 16 in flight, from one job while another sends a flush after
    // each of its 4 KiB writes: the journal is almost always syncing when the first segment is sealed.
    const u = `--uri=${uri(srv.port, 'disk0')}`;
    const r = await run('fio', ['--ioengine=nbd', '--rw=randwrite', '--size=128m', '--name=bulk', u, '--bs=64k', '--iodepth=16', '--io_size=100m', '--name=flusher', u, '--bs=4k', '--iodepth=1', '--fsync=1', '--io_size=4m'], { timeoutMs: 40_000 });
    expect(r.code, r.stdout.slice(-2000) + r.stderr + srv.stderr()).toBe(0);
    expect(srv.stderr()).not.toMatch(/journal sync failed/);
    expect((await status(store)).lastSeq).toBe(1600 + 1024);
    expect(await srv.stop()).toEqual({ code: 0, signal: null });
    const v = await rewind(['verify', store], 30_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('rewind verify passes while serve keeps applying windows', async (ctx) => {
    if (!requireTool('fio')) ctx.skip();
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:64M', 'count:50');
    const srv = await startServe(store);
    // 48 MiB of random 4 KiB writes in all (no segment gets sealed: see the bug above).
    const fio = run('fio', ['--name=load', '--ioengine=nbd', `--uri=${uri(srv.port, 'disk0')}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=64m', '--io_size=48m'], { timeoutMs: 40_000 });
    let done = false;
    void fio.then(() => (done = true));
    const failures: string[] = [];
    let runs = 0;
    while (!done) {
      const v = await rewind(['verify', store], 30_000);
      runs++;
      if (v.code !== 0) failures.push(v.stdout + v.stderr);
      if (runs >= 20) break;
    }
    ok(await fio);
    expect(runs).toBeGreaterThan(1);
    expect(failures, failures[0]).toEqual([]);
  });
});

