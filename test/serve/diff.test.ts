// What changed between two points, as users reach it: `rewind diff` (text and --json, while serve
// runs), and over NBD the dirty bitmap `qemu:dirty-bitmap:rewind-since-seq-N` on a volume and on a
// view, read by nbdinfo --map and by qemu (x-dirty-bitmap, as qemu's incremental backup readers do),
// plus base:allocation through qemu-img map. All agree with the writes made. Bad input gets a clear
// message and exit 2; a since-seq the store cannot answer is refused and the server says why.
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { dumpOnFailure, initStore, KiB, MiB, ok, removeTempDirs, rewind, run, startServe, status, stopAll, tempDir, uri } from './harness.js';

interface Extent {
  offset: number;
  length: number;
}

/** The dirty runs of `nbdinfo --map=... --json` output. */
function dirtyOf(json: string): Extent[] {
  return (JSON.parse(json) as { offset: number; length: number; type: number }[]).filter((e) => e.type === 1).map((e) => ({ offset: e.offset, length: e.length }));
}

describe('rewind diff and NBD dirty bitmaps', () => {
  afterEach((ctx) => {
    dumpOnFailure(ctx);
  });
  afterAll(async () => {
    await stopAll();
    removeTempDirs();
  });

  it('agree with each other and with the writes, on a volume and on a view, while serve runs', async (ctx) => {
    if (!requireTool('nbdinfo') || !requireTool('qemu-io') || !requireTool('qemu-img')) ctx.skip();
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:16M', 'count:3');
    const srv = await startServe(store);
    const disk = uri(srv.port, 'disk0');
    // Round 1: seqs 1-3. Round 2: seqs 4-6 (a window of 3, applied). Round 3: seqs 7-8 (open window).
    ok(await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', '-c', 'write -P 2 1M 10k', '-c', 'write -P 3 100 10', disk]));
    ok(await run('qemu-io', ['-f', 'raw', '-c', 'write -P 4 2M 4k', '-c', 'write -P 5 3M 1', '-c', 'write -P 6 8191 2', disk]));
    ok(await run('qemu-io', ['-f', 'raw', '-c', 'write -P 7 5M 64k', '-c', 'write -P 8 1M 1', disk]));
    expect((await status(store)).lastSeq).toBe(8);

    const since3: Extent[] = [{ offset: 4 * KiB, length: 8 * KiB }, { offset: 1 * MiB, length: 4 * KiB }, { offset: 2 * MiB, length: 4 * KiB }, { offset: 3 * MiB, length: 4 * KiB }, { offset: 5 * MiB, length: 64 * KiB }];
    const cli = JSON.parse(ok(await rewind(['diff', store, '--volume', 'disk0', '--from', '3', '--json'])).stdout) as { extents: Extent[]; fromSeq: number; toSeq: number };
    expect(cli.extents).toEqual(since3);
    expect([cli.fromSeq, cli.toSeq]).toEqual([3, 8]);
    const map = ok(await run('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:rewind-since-seq-3', disk]));
    expect(dirtyOf(map.stdout)).toEqual(since3);

    // A view at seq 6 with the bitmap since seq 1: writes 2-6 only.
    const since1to6: Extent[] = [{ offset: 0, length: 12 * KiB }, { offset: 1 * MiB, length: 12 * KiB }, { offset: 2 * MiB, length: 4 * KiB }, { offset: 3 * MiB, length: 4 * KiB }];
    const view = uri(srv.port, 'disk0@seq=6');
    expect(dirtyOf(ok(await run('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:rewind-since-seq-1', view])).stdout)).toEqual(since1to6);
    expect(JSON.parse(ok(await rewind(['diff', store, '--volume', 'disk0', '--from', '1', '--to', '6', '--json'])).stdout).extents).toEqual(since1to6);

    // qemu reads the bitmap the way incremental backup does (x-dirty-bitmap: dirty shows as data false).
    const qemuMap = ok(await run('qemu-img', ['map', '--output=json', '--image-opts', `driver=nbd,host=127.0.0.1,port=${srv.port},export=disk0,x-dirty-bitmap=qemu:dirty-bitmap:rewind-since-seq-3`]));
    const qemuDirty = (JSON.parse(qemuMap.stdout) as { start: number; length: number; data: boolean }[]).filter((e) => !e.data).map((e) => ({ offset: e.start, length: e.length }));
    expect(qemuDirty).toEqual(since3);
    // base:allocation: everything allocated.
    const alloc = JSON.parse(ok(await run('qemu-img', ['map', '--output=json', disk])).stdout) as { start: number; length: number; data: boolean }[];
    expect(alloc).toMatchObject([{ start: 0, length: 16 * MiB, data: true }]);

    // Text output: a row per extent and a summary.
    const text = ok(await rewind(['diff', store, '--volume', 'disk0', '--from', '3'])).stdout;
    expect(text).toContain('5 extents, 84.0 KiB in blocks of 4096 written after seq 3');
    expect(text.split('\n').filter((l) => /^\s+\d+\s+\d+$/.test(l))).toHaveLength(5);

    // A bitmap the store cannot answer: refused at negotiation, and serve logs why.
    const future = await run('nbdinfo', ['--map=qemu:dirty-bitmap:rewind-since-seq-99', disk]);
    expect(future.code).not.toBe(0);
    const afterView = await run('nbdinfo', ['--map=qemu:dirty-bitmap:rewind-since-seq-7', view]);
    expect(afterView.code).not.toBe(0);
    expect(srv.stderr()).toContain('seq 99 is after the newest write (seq 8)');
    expect(srv.stderr()).toContain('seq 7 is after the point of this view (seq 6)');
  });

  it('refuses bad input with exit 2 and a clear message', async () => {
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:1M', 'count:2');
    const cases: [string[], RegExp][] = [
      [['--volume', 'disk0'], /give the start point: --from N/],
      [['--volume', 'disk0', '--from', '0', '--from-time', '2026-01-01T00:00:00Z'], /--from N or --from-time ISO, not both/],
      [['--volume', 'disk0', '--from', 'x'], /--from "x" must be a whole number/],
      [['--volume', 'disk0', '--from', '0', '--to', '5'], /seq 5 is after the newest write \(seq 0\)/],
      [['--volume', 'nope', '--from', '0'], /unknown volume "nope"/],
      [['--volume', 'disk0', '--from-time', 'yesterday'], /--from-time/],
      [['--volume', 'disk0', '--from', '3', '--to', '1'], /^rewind: --from seq 3 is after --to seq 1: give the earlier point as --from\n$/],
    ];
    for (const [args, message] of cases) {
      const r = await rewind(['diff', store, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
    const missing = await rewind(['diff', path.join(path.dirname(store), 'none'), '--volume', 'disk0', '--from', '0']);
    expect(missing.code).toBe(3);
    const empty = JSON.parse(ok(await rewind(['diff', store, '--volume', 'disk0', '--from', '0', '--json'])).stdout);
    expect(empty).toMatchObject({ extents: [], fromSeq: 0, toSeq: 0 });
  });
});
