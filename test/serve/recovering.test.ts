// The README's "Recovering" walkthrough, step by step, as an operator runs it: a store of two volumes
// served by `rewind serve`, written by real clients, one bad write clobbering db's header. Then, with
// serve running: bisect (nbdsh as the check, --from-time) names the write; diff and the NBD dirty
// bitmap (nbdinfo --map) list the same blocks; a clone of the point before it is written with qemu-io
// and answers nbdinfo --map (base:allocation) while db keeps the bad header; restore --all --dry-run
// writes nothing and restore --all writes the set as it was. Rollback is refused (exit 3) while serve
// runs; with serve stopped it sets both volumes back in place and its "to undo" command undoes it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import { BIN, nbdshEnv, ok, removeTempDirs, rewind, run, startServe, status, stopAll, tempDir, uri, type Ran } from './harness.js';

const GOOD = 'GOODHDR!';
const BAD = 'XXXXXXXX';
/** The check: exit 0 while db's header is good. */
const CHECK = `import sys; sys.exit(h.pread(8, 0) != b"${GOOD}")`;

/** `rewind` with the system python first on PATH, for nbdsh probes. */
const rewindNbdsh = (args: string[]): Promise<Ran> => run(process.execPath, [BIN, ...args], { env: { ...nbdshEnv(), REWIND_DEBUG: '' }, timeoutMs: 60_000 });

describe('the Recovering walkthrough (README), with real clients', () => {
  afterEach((ctx) => stopAll(ctx));
  afterAll(removeTempDirs);

  it('bisect, diff and the dirty bitmap, a clone, restore --all, rollback and its undo', async (ctx) => {
    for (const tool of ['nbdsh', 'nbdinfo', 'nbdcopy', 'qemu-io']) if (!requireTool(tool)) ctx.skip();
    const dir = tempDir();
    const st = path.join(dir, 'st');
    ok(await rewind(['init', st, '--volume', 'db:16M', '--volume', 'logs:8M', '--window', 'count:4']));
    let srv = await startServe(st);
    const nbdsh = async (name: string, py: string) => ok(await run('nbdsh', ['-u', uri(srv.port, name), '-c', py], { env: nbdshEnv() })).stdout;
    const qemuIo = async (name: string, ...cmds: string[]) => ok(await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri(srv.port, name)]));

    // The application's history: good writes, more, the bad one, more after it.
    await nbdsh('db', `h.pwrite(b"${GOOD}", 0)`);
    await qemuIo('db', 'write -P 0x11 1M 64k', 'write -P 0x12 2M 4k');
    await qemuIo('logs', 'write -P 0x21 0 4k');
    const good = await status(st);
    await qemuIo('db', 'write -P 0x13 3M 4k');
    await qemuIo('logs', 'write -P 0x22 4k 4k');
    await nbdsh('db', `h.pwrite(b"${BAD}", 0)`);
    const bad = (await status(st)).lastSeq;
    await qemuIo('logs', 'write -P 0x23 8k 4k');
    await qemuIo('db', 'write -P 0x14 5M 4k', 'write -P 0x15 3M 4k');
    const before = (await status(st)).lastSeq;
    const point = bad - 1;

    // 1. bisect from a time the volume was good, alongside serve.
    const found = await rewindNbdsh(['bisect', st, '--volume', 'db', '--from-time', good.lastTime!, '--json', '--', 'nbdsh', '-u', '{}', '-c', CHECK]);
    expect(found.code, found.stderr).toBe(0);
    expect(JSON.parse(found.stdout)).toMatchObject({ volume: 'db', seq: bad, offset: 0, length: 8, writeVolume: 'db', exact: true, from: good.lastSeq, to: before });

    // 2. diff and the dirty bitmap agree: the header block, 3M and 5M (the write to 3M came after too).
    const diff = JSON.parse(ok(await rewind(['diff', st, '--volume', 'db', '--from', String(point), '--json'])).stdout);
    const want = [{ offset: 0, length: 4096 }, { offset: 3 * 2 ** 20, length: 4096 }, { offset: 5 * 2 ** 20, length: 4096 }];
    expect(diff.extents).toEqual(want);
    const map = JSON.parse(ok(await run('nbdinfo', ['--json', `--map=qemu:dirty-bitmap:rewind-since-seq-${point}`, uri(srv.port, 'db')])).stdout) as { offset: number; length: number; type: number }[];
    expect(map.filter((e) => e.type === 1).map((e) => ({ offset: e.offset, length: e.length }))).toEqual(want);
    expect((await nbdsh(`db@seq=${point}`, 'print(h.pread(8, 0).decode())')).trim()).toBe(GOOD);

    // 3. A clone of the point: written, read back, block status answered; db untouched.
    const clone = JSON.parse(ok(await rewind(['clone', 'create', st, 'fixtest', '--volume', 'db', '--seq', String(point), '--max-bytes', '1M', '--json'])).stdout);
    expect(clone).toMatchObject({ name: 'fixtest', volume: 'db', seq: point, requested: `seq ${point}`, nearest: false });
    await qemuIo('fixtest', 'write -P 0x5a 4096 64k');
    expect((await nbdsh('fixtest', 'print(h.pread(8, 0).decode(), h.pread(1, 4096)[0])')).trim()).toBe(`${GOOD} ${0x5a}`);
    const allocation = JSON.parse(ok(await run('nbdinfo', ['--json', '--map', uri(srv.port, 'fixtest')])).stdout) as { length: number }[];
    expect(allocation.reduce((s, e) => s + e.length, 0)).toBe(16 * 2 ** 20);
    ok(await run('nbdinfo', ['--list', `nbd://127.0.0.1:${srv.port}`]));
    expect(srv.stderr()).not.toMatch(/refused/);
    expect((await nbdsh('db', 'print(h.pread(8, 0).decode())')).trim()).toBe(BAD);
    await until(async () => (await rewind(['clone', 'delete', st, 'fixtest'])).code === 0, { what: 'serve closed the clone once qemu-io and nbdsh were gone' });

    // 4. The set restored elsewhere: the plan writes nothing, the restore every volume at the point.
    const out = path.join(dir, 'restore');
    const plan = JSON.parse(ok(await rewind(['restore', st, '--all', '--seq', String(point), '--out-dir', out, '--dry-run', '--json'])).stdout);
    expect(plan).toMatchObject({ dryRun: true, seq: point, outDir: out });
    expect(existsSync(out)).toBe(false);
    ok(await rewind(['restore', st, '--all', '--seq', String(point), '--out-dir', out]));
    const viewDb = path.join(dir, 'view-db.img');
    ok(await run('nbdcopy', [uri(srv.port, `db@seq=${point}`), viewDb]));
    expect(readFileSync(path.join(out, 'db.img')).equals(readFileSync(viewDb))).toBe(true);
    expect(readFileSync(path.join(out, 'db.img')).subarray(0, 8).toString()).toBe(GOOD);

    // 5. Rollback: refused while serve runs, then in place with serve stopped, then undone.
    const refused = await rewind(['rollback', st, '--all', '--seq', String(point)]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`process ${srv.proc.pid} (rewind serve?): stop it first`);
    expect((await status(st)).lastSeq).toBe(before);
    await srv.stop();
    const text = ok(await rewind(['rollback', st, '--all', '--seq', String(point)])).stdout;
    expect(text).toContain(`rolled db, logs back to seq ${point}`);
    expect(text).toContain(`to undo: rewind rollback ${st} --all --seq ${before}`);
    const now = path.join(dir, 'now');
    ok(await rewind(['restore', st, '--all', '--seq', String((await status(st)).lastSeq), '--out-dir', now]));
    for (const v of ['db', 'logs']) expect(readFileSync(path.join(now, `${v}.img`)).equals(readFileSync(path.join(out, `${v}.img`))), v).toBe(true);

    ok(await rewind(['rollback', st, '--all', '--seq', String(before)]));
    srv = await startServe(st);
    expect((await nbdsh('db', 'print(h.pread(8, 0).decode())')).trim()).toBe(BAD);
    const atBefore = path.join(dir, 'at-before');
    const undone = path.join(dir, 'undone');
    ok(await rewind(['restore', st, '--all', '--seq', String(before), '--out-dir', atBefore]));
    ok(await rewind(['restore', st, '--all', '--seq', String((await status(st)).lastSeq), '--out-dir', undone]));
    for (const v of ['db', 'logs']) expect(readFileSync(path.join(undone, `${v}.img`)).equals(readFileSync(path.join(atBefore, `${v}.img`))), v).toBe(true);
    ok(await rewind(['verify', st]));
  });
});
