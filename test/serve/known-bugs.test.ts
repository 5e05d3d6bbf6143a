// Two src bugs found by the `rewind serve` end-to-end tests. These tests state the wanted behaviour
// and fail on the code as it stands; they run only with REWIND_KNOWN_BUGS=1 until the fixes land
// (then drop the gate):
//
// 1. src/journal/journal.ts, rotate() + pump(): a segment sealed while a group-commit fsync is in
//    flight is re-added to `unsynced` by rotate(); when that fsync completes, pump() closes every
//    file it synced that is not the open one (`for (const f of files) if (f !== this.file)
//    f.close()`), i.e. the just-sealed segment, which is still in `unsynced`. The next pump round
//    fsyncs the closed file: "journal sync failed: The value of "fd" is out of range ... Received
//    -1", the journal is failed for good and every later write and flush gets EIO.
// 2. src/verify/verify.ts, step 3: the index entries come from the snapshot taken when the reader
//    opened, the pack listing from much later; any window applied in between leaves a pack with
//    "no transaction", and all but the first are reported as damage ("pack for seq A..B has no
//    transaction and does not follow the last one", exit 1) while `rewind serve` is writing.

import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { initStore, ok, removeTempDirs, rewind, run, startServe, status, stopAll, tempDir, uri } from './harness.js';

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

describe.runIf(process.env.REWIND_KNOWN_BUGS)('rewind serve: known bugs', () => {
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

