// `rewind serve` takes READ and WRITE requests up to 64 MiB from any client, also from one that
// picked its export with the old NBD_OPT_EXPORT_NAME and so agreed no block sizes (the NBD test
// suite's "huge" trace sends 48 MiB). A write longer than the store's 32 MiB limit is journaled in
// pieces; once the request is answered the history is exact: views and restore show the whole write.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { pattern } from '../nbd/harness.js';
import { RawClient } from '../nbd/raw-client.js';
import { initStore, KiB, MiB, ok, removeTempDirs, rewind, startServe, status, statusUntil, stopAll, tempDir } from './harness.js';

const NBD_EINVAL = 22;
const CMD_FLAG_FUA = 1;
const SIZE = 64 * MiB;

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

describe('rewind serve: requests over the store write limit', () => {
  it('a 48 MiB write over NBD_OPT_EXPORT_NAME reads back byte for byte, and views and restore after it are exact', async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    await initStore(store, 'disk0:64M', 'count:50');
    const srv = await startServe(store);
    const { client: c, size } = await RawClient.openByExportName(srv.port, 'disk0');
    expect(size).toBe(SIZE);
    const first = pattern(4 * KiB, 1);
    expect((await c.writeAt(0, first, 0, 1n)).error).toBe(0);
    const before = (await statusUntil(store, (s) => s.lastSeq === 1)).lastSeq;
    const big = pattern(48 * MiB, 48);
    const at = 8 * MiB + 512; // not aligned to anything the store splits on
    expect((await c.writeAt(at, big, CMD_FLAG_FUA, 2n)).error).toBe(0);
    const expected = Buffer.alloc(SIZE);
    first.copy(expected, 0);
    big.copy(expected, at);

    const back = await c.readAt(at, big.length, 3n);
    expect(back.error).toBe(0);
    expect(back.data!.equals(big)).toBe(true);
    const whole = await c.readAt(0, SIZE, 4n);
    expect(whole.error).toBe(0);
    expect(whole.data!.equals(expected)).toBe(true);
    expect(await c.disconnect()).toBe(true);

    // The history: right after the request, the volume is the whole write; before it, none of it.
    const after = (await status(store)).lastSeq;
    expect(after).toBeGreaterThan(before);
    const view = await RawClient.openByExportName(srv.port, `disk0@seq=${after}`);
    const viewed = await view.client.readAt(0, SIZE, 1n);
    expect(viewed.error).toBe(0);
    expect(viewed.data!.equals(expected)).toBe(true);
    expect(await view.client.disconnect()).toBe(true);
    const past = await RawClient.openByExportName(srv.port, `disk0@seq=${before}`);
    const old = await past.client.readAt(0, SIZE, 1n);
    expect(old.data!.equals(Buffer.concat([first, Buffer.alloc(SIZE - first.length)]))).toBe(true);
    expect(await past.client.disconnect()).toBe(true);

    const out = path.join(dir, 'restored.img');
    ok(await rewind(['restore', store, '--volume', 'disk0', '--seq', String(after), '--out', out], 30_000));
    expect(readFileSync(out).equals(expected)).toBe(true);
    expect(srv.proc.exitCode).toBe(null);
  }, 60_000);

  it('a READ or WRITE over 64 MiB gets EINVAL, writes nothing, and the connection stays usable', async () => {
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:64M', 'count:50');
    const srv = await startServe(store);
    const { client: c } = await RawClient.openByExportName(srv.port, 'disk0');
    // EINVAL, not ENOSPC: the length is refused before the range is looked at.
    expect((await c.writeAt(0, Buffer.alloc(64 * MiB + 1, 0x77), 0, 1n)).error).toBe(NBD_EINVAL);
    expect((await c.readAt(0, 64 * MiB + 1, 2n)).error).toBe(NBD_EINVAL);
    const r = await c.readAt(0, 4 * KiB, 3n);
    expect(r).toMatchObject({ error: 0, handle: 3n });
    expect(r.data!.equals(Buffer.alloc(4 * KiB))).toBe(true);
    expect(await c.disconnect()).toBe(true);
    expect((await status(store)).lastSeq).toBe(0);
  }, 60_000);
});
