// `rewind serve` end to end (GitHub issue 3): fio's nbd engine with crc32c verification, and bad
// input from a raw client against the real server. Bad input gets its error, changes nothing
// (lastSeq from `rewind status` in another process stays put) and never stops the server.

import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../nbd/raw-client.js';
import { fioVerifyArgs, requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import { KiB, MiB, ok, removeTempDirs, rewind, run, startServe, status, statusUntil, stopAll, tempDir, initStore, uri, type Served } from './harness.js';

const NBD_EPERM = 1;
const NBD_EINVAL = 22;
const NBD_ENOSPC = 28;
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_FLUSH = 3;
const SIZE = 64 * MiB;

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

async function freshServer(extra: string[] = []): Promise<{ store: string; srv: Served }> {
  const store = path.join(tempDir(), 'store');
  await initStore(store, 'disk0:64M', 'count:50');
  return { store, srv: await startServe(store, extra) };
}

describe('rewind serve: fio', () => {
  it('random 4k writes at iodepth 16 verify with crc32c; rewind verify passes while serve runs', async (ctx) => {
    if (!requireTool('fio')) ctx.skip();
    const { store, srv } = await freshServer();
    const r = ok(
      await run(
        'fio',
        fioVerifyArgs(uri(srv.port, 'disk0'), ['--runtime=20']),
        { timeoutMs: 30_000 },
      ),
    );
    const job = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0];
    expect(job.error).toBe(0);
    expect(job.write.total_ios).toBe(1024);
    expect(job.read.io_bytes).toBeGreaterThanOrEqual(4 * MiB); // the verify pass read it all back
    const s = await status(store);
    expect(s.lastSeq).toBeGreaterThanOrEqual(1024);
    expect(s.transactions).toBeGreaterThanOrEqual(1);
    const v = await rewind(['verify', store], 30_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(srv.proc.exitCode).toBe(null);
  });
});

describe('rewind serve: bad input from a raw client', () => {
  /**
   * lastSeq has not moved. The caller has seen the server act on the bad input (its reply, the
   * connection closed, or the next connection admitted); a FLUSH on `via` then puts on disk
   * whatever the server journaled, where `rewind status` reads it.
   */
  async function expectUnchanged(store: string, lastSeq: number, via: RawClient): Promise<void> {
    via.sendRequest(CMD_FLUSH, { handle: 99n });
    expect(await via.simpleReply()).toMatchObject({ error: 0, handle: 99n });
    expect((await status(store)).lastSeq).toBe(lastSeq);
  }

  /**
   * A new connection, once the server admits one. Under --max-connections 1 that means the
   * connection before it has closed and everything it made the server do is done.
   */
  async function nextAdmitted(port: number): Promise<RawClient> {
    let admitted: RawClient | null = null;
    await until(
      async () => {
        const c = await RawClient.connect(port);
        try {
          await c.start();
          await c.go('disk0');
          admitted = c;
          return true;
        } catch {
          c.destroy();
          return false;
        }
      },
      { what: 'the server admits a connection again (the previous one has closed)' },
    );
    return admitted!;
  }

  /** Another connection still gets served: a read that returns the expected bytes. */
  async function expectServing(srv: Served, offset: number, expected: Buffer, connection?: RawClient): Promise<void> {
    const client = connection ?? (await RawClient.open(srv.port, 'disk0')).client;
    const r = await client.readAt(offset, expected.length);
    expect(r.error).toBe(0);
    expect(r.data!.equals(expected)).toBe(true);
    expect(await client.disconnect()).toBe(true);
  }

  it('errors for writes and reads past the end, unknown commands, oversize reads and view writes; the connection stays usable', async () => {
    const { store, srv } = await freshServer();
    const { client, size } = await RawClient.open(srv.port, 'disk0');
    expect(size).toBe(SIZE);
    const good = Buffer.alloc(4 * KiB, 0x6b);
    expect((await client.writeAt(0, good)).error).toBe(0);
    const base = await statusUntil(store, (s) => s.lastSeq === 1);

    // Past or straddling the end: ENOSPC for writes (payload consumed), EINVAL for reads.
    expect((await client.writeAt(SIZE, Buffer.alloc(4 * KiB, 1), 0, 2n)).error).toBe(NBD_ENOSPC);
    expect((await client.writeAt(SIZE - 512, Buffer.alloc(1024, 1), 0, 3n)).error).toBe(NBD_ENOSPC);
    client.sendRequest(CMD_WRITE, { handle: 4n, offset: 2n ** 63n, payload: Buffer.alloc(512, 1) });
    expect(await client.simpleReply()).toMatchObject({ error: NBD_ENOSPC, handle: 4n });
    expect((await client.readAt(SIZE, 512, 5n)).error).toBe(NBD_EINVAL);
    expect((await client.readAt(SIZE - 512, 1024, 6n)).error).toBe(NBD_EINVAL);
    // Zero length, an unknown command, an unknown flag, a read over the 64 MiB maximum.
    expect((await client.readAt(0, 0, 7n)).error).toBe(NBD_EINVAL);
    client.sendRequest(99, { handle: 8n, offset: 0, length: 512 });
    expect(await client.simpleReply()).toMatchObject({ error: NBD_EINVAL, handle: 8n });
    client.sendRequest(CMD_READ, { handle: 9n, flags: 0x8000, offset: 0, length: 512 });
    expect(await client.simpleReply()).toMatchObject({ error: NBD_EINVAL, handle: 9n });
    expect((await client.readAt(0, 64 * MiB + 1, 10n)).error).toBe(NBD_EINVAL);
    await expectUnchanged(store, base.lastSeq, client);

    // The same connection still works, and nothing was written past the first write.
    const back = await client.readAt(0, 8 * KiB, 11n);
    expect(back.error).toBe(0);
    expect(back.data!.equals(Buffer.concat([good, Buffer.alloc(4 * KiB)]))).toBe(true);
    const tail = await client.readAt(SIZE - 1024, 1024, 12n);
    expect(tail.data!.equals(Buffer.alloc(1024))).toBe(true);
    expect(await client.disconnect()).toBe(true);

    // A write to a view of the past: EPERM, payload consumed, connection usable.
    const view = await RawClient.open(srv.port, `disk0@seq=${base.lastSeq}`);
    expect((await view.client.writeAt(0, Buffer.alloc(4 * KiB, 2), 0, 1n)).error).toBe(NBD_EPERM);
    const viewBack = await view.client.readAt(0, 4 * KiB, 2n);
    expect(viewBack.data!.equals(good)).toBe(true);
    expect(await view.client.disconnect()).toBe(true);
    const after = (await RawClient.open(srv.port, 'disk0')).client;
    await expectUnchanged(store, base.lastSeq, after);
    await expectServing(srv, 0, good, after);
  });

  it('a bad request magic closes only that connection', async () => {
    const { store, srv } = await freshServer();
    const other = await RawClient.open(srv.port, 'disk0');
    const { client } = await RawClient.open(srv.port, 'disk0');
    client.sendRequest(CMD_WRITE, { magic: 0x12345678, offset: 0, payload: Buffer.alloc(4 * KiB, 3) });
    expect(await client.closedWithin(5000)).toBe(true);
    await expectUnchanged(store, 0, other.client);
    // The connection opened before is untouched, and new ones are served.
    const r = await other.client.readAt(0, 4 * KiB);
    expect(r.error).toBe(0);
    expect(r.data!.equals(Buffer.alloc(4 * KiB))).toBe(true);
    expect(await other.client.disconnect()).toBe(true);
    await expectServing(srv, 0, Buffer.alloc(4 * KiB));
  });

  it('a client that disconnects in the middle of a write payload changes nothing', async () => {
    // One connection at a time, so admitting the next one shows the server is done with the last.
    const { store, srv } = await freshServer(['--max-connections', '1']);
    const { client } = await RawClient.open(srv.port, 'disk0');
    const good = Buffer.alloc(64 * KiB, 0x42);
    expect((await client.writeAt(MiB, good)).error).toBe(0);
    const base = await statusUntil(store, (s) => s.lastSeq === 1);
    // The header announces 64 KiB; only 1000 bytes follow before the socket is destroyed (once
    // they have left this process: destroy() drops what is still queued).
    client.write(Buffer.concat([RawClient.requestHeader(CMD_WRITE, { handle: 2n, offset: MiB, length: 64 * KiB }), Buffer.alloc(1000, 0x99)]));
    await until(() => client.socket.writableLength === 0);
    client.destroy();
    const afterFirst = await nextAdmitted(srv.port);
    await expectUnchanged(store, base.lastSeq, afterFirst);
    afterFirst.destroy();
    // Same with the header itself cut short.
    const second = await nextAdmitted(srv.port);
    second.write(RawClient.requestHeader(CMD_WRITE, { handle: 1n, offset: MiB, length: 4 * KiB }).subarray(0, 20));
    await until(() => second.socket.writableLength === 0);
    second.destroy();
    const afterSecond = await nextAdmitted(srv.port);
    await expectUnchanged(store, base.lastSeq, afterSecond);
    await expectServing(srv, MiB, good, afterSecond);
    const v = await rewind(['verify', store], 30_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
