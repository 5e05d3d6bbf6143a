// What the NBD server promises on the wire, checked with a raw client against the memory provider.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import type { ExportProvider, NbdExport } from '../../src/nbd/export.js';
import { closeServers, KiB, MiB, pattern, serve, until } from './harness.js';
import { RawClient } from './raw-client.js';

// Wire values (NetworkBlockDevice/nbd doc/proto.md), spelled out here so the tests do not trust
// the code under test.
const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8 };
const REP = { ACK: 1, SERVER: 2, INFO: 3, ERR_UNSUP: 0x80000001, ERR_POLICY: 0x80000002, ERR_INVALID: 0x80000003, ERR_UNKNOWN: 0x80000006 };
const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 };
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 };
const FLAG = { FUA: 1, NO_HOLE: 2, DF: 4 };
const TF = { HAS_FLAGS: 1, READ_ONLY: 2, SEND_FLUSH: 4, SEND_FUA: 8, SEND_TRIM: 32, SEND_WRITE_ZEROES: 64, CAN_MULTI_CONN: 256 };
const E = { EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28 };

const DISK = 1 * MiB;

function provider(): MemoryExportProvider {
  return new MemoryExportProvider({
    disk0: { size: DISK, description: 'the first disk' },
    'disk0@seq=12': { size: 64 * KiB, readOnly: true, data: pattern(64 * KiB, 12) },
    notrim: { size: 64 * KiB, canTrim: false },
  });
}

afterEach(closeServers);

describe('handshake', () => {
  it('greets with FIXED_NEWSTYLE | NO_ZEROES and enters transmission on NBD_OPT_GO', async () => {
    const { port } = await serve(provider());
    const c = await RawClient.connect(port);
    expect(await c.greeting()).toBe(3);
    c.sendClientFlags(3);
    const { size, flags, replies } = await c.go('disk0', [INFO.BLOCK_SIZE]);
    expect(size).toBe(DISK);
    expect(flags).toBe(TF.HAS_FLAGS | TF.SEND_FLUSH | TF.SEND_FUA | TF.SEND_TRIM | TF.SEND_WRITE_ZEROES | TF.CAN_MULTI_CONN);
    const bs = replies.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === INFO.BLOCK_SIZE)!;
    expect([bs.data.readUInt32BE(2), bs.data.readUInt32BE(6), bs.data.readUInt32BE(10)]).toEqual([1, 4096, 32 * MiB]);
    expect((await c.readAt(0, 512)).error).toBe(0);
    expect(await c.disconnect()).toBe(true);
  });

  it('listens on a Unix socket when given socketPath', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rewind-nbd-'));
    try {
      const socketPath = path.join(dir, 'nbd.sock');
      const { server } = await serve(provider(), { listen: undefined, socketPath });
      expect(server.address()).toEqual({ path: socketPath });
      const c = await RawClient.connect(socketPath);
      await c.start();
      expect((await c.go('disk0')).size).toBe(DISK);
      expect(await c.disconnect()).toBe(true);
      await server.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('advertises READ_ONLY and no write-type commands for a read-only export', async () => {
    const { port } = await serve(provider());
    const { client, flags } = await RawClient.open(port, 'disk0@seq=12');
    expect(flags).toBe(TF.HAS_FLAGS | TF.READ_ONLY | TF.SEND_FLUSH | TF.SEND_FUA | TF.CAN_MULTI_CONN);
    client.destroy();
  });

  it('lists exports with their descriptions, and rejects NBD_OPT_LIST with data', async () => {
    const { port } = await serve(provider());
    const c = await RawClient.connect(port);
    await c.start();
    c.sendOption(OPT.LIST);
    const replies = await c.optionReplies();
    expect(replies.map((r) => r.type)).toEqual([REP.SERVER, REP.SERVER, REP.SERVER, REP.ACK]);
    const entries = replies.slice(0, 3).map((r) => {
      const n = r.data.readUInt32BE(0);
      return [r.data.subarray(4, 4 + n).toString(), r.data.subarray(4 + n).toString()];
    });
    expect(entries).toEqual([
      ['disk0', 'the first disk'],
      ['disk0@seq=12', ''],
      ['notrim', ''],
    ]);
    c.sendOption(OPT.LIST, Buffer.from('x'));
    expect((await c.optionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.ABORT);
    expect((await c.optionReply()).type).toBe(REP.ACK);
    expect(await c.closedWithin()).toBe(true);
  });

  it('answers NBD_OPT_INFO with export, block size, name and description, and stays in the handshake', async () => {
    const p = provider();
    const { port } = await serve(p);
    const c = await RawClient.connect(port);
    await c.start();
    c.sendOption(OPT.INFO, RawClient.infoData('disk0', [INFO.NAME, INFO.DESCRIPTION, INFO.BLOCK_SIZE]));
    const replies = await c.optionReplies();
    expect(replies.at(-1)!.type).toBe(REP.ACK);
    const byType = new Map(replies.filter((r) => r.type === REP.INFO).map((r) => [r.data.readUInt16BE(0), r.data]));
    expect(Number(byType.get(INFO.EXPORT)!.readBigUInt64BE(2))).toBe(DISK);
    expect(byType.get(INFO.NAME)!.subarray(2).toString()).toBe('disk0');
    expect(byType.get(INFO.DESCRIPTION)!.subarray(2).toString()).toBe('the first disk');
    expect(byType.get(INFO.BLOCK_SIZE)!.length).toBe(14);
    await until(() => p.stats.closes === 1);
    expect(p.stats).toMatchObject({ opens: 1, closes: 1 });
    // Unknown export: an error, and the handshake goes on.
    c.sendOption(OPT.INFO, RawClient.infoData('nope'));
    const unknown = await c.optionReply();
    expect(unknown.type).toBe(REP.ERR_UNKNOWN);
    expect(unknown.data.toString()).toContain('nope');
    c.sendOption(OPT.GO, RawClient.infoData('nope'));
    expect((await c.optionReply()).type).toBe(REP.ERR_UNKNOWN);
    expect((await c.go('disk0')).size).toBe(DISK);
    c.destroy();
  });

  it('rejects malformed NBD_OPT_INFO data with NBD_REP_ERR_INVALID', async () => {
    const { port } = await serve(provider());
    const c = await RawClient.connect(port);
    await c.start();
    const bad = [
      Buffer.alloc(3),
      Buffer.from([0, 0, 0, 50, 0, 0]), // name length overruns
      Buffer.concat([RawClient.infoData('disk0'), Buffer.from([0])]), // trailing byte
      RawClient.infoData('a\0b'), // NUL in a string
    ];
    for (const data of bad) {
      c.sendOption(OPT.INFO, data);
      expect((await c.optionReply()).type).toBe(REP.ERR_INVALID);
    }
    expect((await c.go('disk0')).size).toBe(DISK);
    c.destroy();
  });

  it('answers unknown options, STARTTLS (without TLS) and EXTENDED_HEADERS with NBD_REP_ERR_UNSUP', async () => {
    const { port } = await serve(provider());
    const c = await RawClient.connect(port);
    await c.start();
    for (const opt of [OPT.STARTTLS, 4, 11, 99, 0x7fffffff]) {
      c.sendOption(opt);
      const r = await c.optionReply();
      expect([r.option, r.type]).toEqual([opt, REP.ERR_UNSUP]);
    }
    c.destroy();
  });

  it('NBD_OPT_EXPORT_NAME sends size, flags and the 124 zeroes unless NO_ZEROES; unknown names close', async () => {
    const { port } = await serve(provider());
    for (const [clientFlags, tail] of [
      [3, 10],
      [1, 134],
    ] as const) {
      const c = await RawClient.connect(port);
      await c.start(clientFlags);
      c.sendOption(OPT.EXPORT_NAME, Buffer.from('disk0'));
      const reply = await c.read(tail);
      expect(Number(reply.readBigUInt64BE(0))).toBe(DISK);
      expect(reply.readUInt16BE(8) & TF.HAS_FLAGS).toBe(1);
      expect((await c.readAt(0, 16)).data!.length).toBe(16);
      expect(await c.closedWithin(200)).toBe(false); // nothing more was sent
      c.destroy();
    }
    const c = await RawClient.connect(port);
    await c.start();
    c.sendOption(OPT.EXPORT_NAME, Buffer.from('nope'));
    expect(await c.closedWithin()).toBe(true);
  });

  it('drops clients that send unknown client flags or a bad option magic', async () => {
    const { port } = await serve(provider());
    const a = await RawClient.connect(port);
    await a.start(0x4);
    expect(await a.closedWithin()).toBe(true);
    const b = await RawClient.connect(port);
    await b.start();
    b.write(Buffer.alloc(16, 0x41));
    expect(await b.closedWithin()).toBe(true);
  });

  it('closes a connection that does not finish the handshake in time', async () => {
    const { port, server } = await serve(provider(), { handshakeTimeoutMs: 150 });
    const c = await RawClient.connect(port);
    await c.start();
    expect(server.connections()).toBe(1);
    const t0 = Date.now();
    expect(await c.closedWithin(2000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1500);
    await until(() => server.connections() === 0);
    // A connection in transmission is not subject to the timeout: once a handshake started after
    // it has been timed out, its own timeout would have fired too, yet it still reads.
    const { client } = await RawClient.open(port, 'disk0');
    const later = await RawClient.connect(port);
    expect(await later.closedWithin(10_000)).toBe(true);
    expect((await client.readAt(0, 8)).error).toBe(0);
    client.destroy();
  });

  it('refuses connections over maxConnections with NBD_REP_ERR_POLICY, and admits again once one leaves', async () => {
    const { port, server } = await serve(provider(), { maxConnections: 1 });
    const first = await RawClient.open(port, 'disk0');
    const second = await RawClient.connect(port);
    await second.start();
    second.sendOption(OPT.GO, RawClient.infoData('disk0'));
    const refusal = await second.optionReply();
    expect(refusal.type).toBe(REP.ERR_POLICY);
    expect(refusal.data.toString()).toMatch(/connection limit of 1/);
    second.sendOption(OPT.EXPORT_NAME, Buffer.from('disk0'));
    expect(await second.closedWithin()).toBe(true);
    expect(server.connections()).toBe(1);
    expect(await first.client.disconnect()).toBe(true);
    await until(() => server.connections() === 0);
    const third = await RawClient.open(port, 'disk0');
    expect((await third.client.readAt(0, 8)).error).toBe(0);
    third.client.destroy();
  });
});

describe('transmission: commands', () => {
  it('writes, reads back, flushes, trims and writes zeroes', async () => {
    const p = provider();
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'disk0');
    const data = pattern(8 * KiB, 1);
    expect((await c.writeAt(4096, data)).error).toBe(0);
    expect((await c.readAt(4096, data.length)).data).toEqual(data);
    expect((await c.writeAt(1, Buffer.from('odd'), FLAG.FUA)).error).toBe(0); // byte granular, FUA
    expect((await c.readAt(0, 5)).data).toEqual(Buffer.from([0, 0x6f, 0x64, 0x64, 0]));
    c.sendRequest(CMD.FLUSH);
    expect((await c.simpleReply()).error).toBe(0);
    c.sendRequest(CMD.FLUSH, { flags: FLAG.FUA });
    expect((await c.simpleReply()).error).toBe(0);
    c.sendRequest(CMD.TRIM, { offset: 4096, length: 4096, flags: FLAG.FUA });
    expect((await c.simpleReply()).error).toBe(0);
    c.sendRequest(CMD.WRITE_ZEROES, { offset: 8192, length: 1024, flags: FLAG.NO_HOLE | FLAG.FUA });
    expect((await c.simpleReply()).error).toBe(0);
    const back = (await c.readAt(4096, data.length)).data!;
    expect(back.subarray(0, 5120).equals(Buffer.alloc(5120))).toBe(true);
    expect(back.subarray(5120)).toEqual(data.subarray(5120));
    expect(p.bytes('disk0').subarray(4096, 4096 + 8192)).toEqual(back);
    expect(await c.disconnect()).toBe(true);
    await until(() => p.stats.closes === 1);
  });

  it('keeps many requests in flight and answers each by its handle', async () => {
    const p = provider();
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'disk0');
    const n = 200;
    const blocks = Array.from({ length: n }, (_, i) => pattern(4096, i + 100));
    // All writes, then all reads, in one burst.
    c.write(Buffer.concat(blocks.map((b, i) => Buffer.concat([RawClient.requestHeader(CMD.WRITE, { handle: BigInt(i), offset: i * 4096, length: 4096 }), b]))));
    for (let i = 0; i < n; i++) expect(await c.simpleReply()).toMatchObject({ error: 0, handle: BigInt(i) });
    c.write(Buffer.concat(blocks.map((_, i) => RawClient.requestHeader(CMD.READ, { handle: 0xffff_0000_0000n + BigInt(i), offset: i * 4096, length: 4096 }))));
    for (let i = 0; i < n; i++) {
      const r = await c.simpleReply(4096);
      expect(r.handle).toBe(0xffff_0000_0000n + BigInt(i));
      expect(r.data!.equals(blocks[i]!)).toBe(true);
    }
    // Byte at a time: the parser copes with any split.
    const h = RawClient.requestHeader(CMD.WRITE, { handle: 7n, offset: 0, length: 3 });
    for (const byte of Buffer.concat([h, Buffer.from('abc')])) c.write(Buffer.from([byte]));
    expect(await c.simpleReply()).toMatchObject({ error: 0, handle: 7n });
    expect(p.bytes('disk0').subarray(0, 3).toString()).toBe('abc');
    c.destroy();
  });
});

describe('transmission: errors (answered like nbdkit, never reaching the export)', () => {
  it('answers each bad request with the right error and keeps the connection', async () => {
    const p = provider();
    const { port } = await serve(p, { maxPayloadBytes: 64 * KiB });
    const { client: c } = await RawClient.open(port, 'disk0');
    const { client: ro } = await RawClient.open(port, 'disk0@seq=12');
    const { client: nt } = await RawClient.open(port, 'notrim');
    const before = { ...p.stats };
    const cases: [RawClient, number, Parameters<RawClient['sendRequest']>[1], number][] = [
      [c, CMD.READ, { offset: DISK, length: 1 }, E.EINVAL], // past the end
      [c, CMD.READ, { offset: DISK - 1, length: 2 }, E.EINVAL], // straddling
      [c, CMD.READ, { offset: 2n ** 63n, length: 512 }, E.EINVAL], // huge offset
      [c, CMD.READ, { offset: 0, length: 0 }, E.EINVAL], // zero length
      [c, CMD.READ, { offset: 0, length: 64 * KiB + 1 }, E.EINVAL], // over the maximum payload
      [c, CMD.TRIM, { offset: DISK - 512, length: 1024 }, E.EINVAL],
      [c, CMD.WRITE, { offset: DISK - 2, payload: Buffer.from('xyz') }, E.ENOSPC], // payload consumed
      [c, CMD.WRITE, { offset: 0, payload: Buffer.alloc(64 * KiB + 1, 1) }, E.EINVAL], // over the maximum, payload consumed
      [c, CMD.WRITE_ZEROES, { offset: DISK, length: 1 }, E.ENOSPC],
      [c, 9, {}, E.EINVAL], // unknown command
      [c, CMD.CACHE, { length: 512 }, E.EINVAL], // not offered
      [c, CMD.BLOCK_STATUS, { length: 512 }, E.EINVAL], // not negotiated
      [c, CMD.READ, { length: 512, flags: 1 << 7 }, E.EINVAL], // unknown flag
      [c, CMD.READ, { length: 512, flags: FLAG.DF }, E.EINVAL], // DF without structured replies
      [c, CMD.WRITE, { payload: Buffer.alloc(4), flags: FLAG.NO_HOLE }, E.EINVAL], // flag for another command
      [c, CMD.FLUSH, { offset: 512 }, E.EINVAL],
      [ro, CMD.WRITE, { payload: Buffer.alloc(512) }, E.EPERM],
      [ro, CMD.TRIM, { length: 512 }, E.EPERM],
      [ro, CMD.WRITE_ZEROES, { length: 512 }, E.EPERM],
      [nt, CMD.TRIM, { length: 512 }, E.EINVAL],
    ];
    for (const [client, type, opts, error] of cases) {
      client.sendRequest(type, { handle: 42n, ...opts });
      const r = await client.simpleReply();
      expect({ type, opts, error: r.error, handle: r.handle }).toEqual({ type, opts, error, handle: 42n });
    }
    expect(p.stats).toEqual(before);
    // Still usable, and a rejected payload was skipped exactly.
    for (const client of [c, ro, nt]) expect((await client.readAt(0, 512)).error).toBe(0);
    expect(p.bytes('disk0').equals(Buffer.alloc(DISK))).toBe(true);
    c.destroy();
    ro.destroy();
    nt.destroy();
  });

  it('closes the connection on a bad request magic; other connections keep working', async () => {
    const p = provider();
    const { port, logs } = await serve(p);
    const { client: bad } = await RawClient.open(port, 'disk0');
    const { client: good } = await RawClient.open(port, 'disk0');
    bad.sendRequest(CMD.WRITE, { magic: 0x12345678, payload: Buffer.alloc(512, 9) });
    expect(await bad.closedWithin()).toBe(true);
    expect(logs.join('\n')).toMatch(/bad request magic 0x12345678/);
    expect((await good.writeAt(0, Buffer.from('fine'))).error).toBe(0);
    expect((await good.readAt(0, 4)).data!.toString()).toBe('fine');
    expect(p.stats.writes).toBe(1);
    good.destroy();
  });

  it('drops a write cut off mid-payload: the export never sees it, and is closed', async () => {
    const p = provider();
    const { port, server } = await serve(p);
    const { client: c } = await RawClient.open(port, 'disk0');
    // end() sends the 30 KiB first; the server sees them as data, then the end, in that order.
    c.write(Buffer.concat([RawClient.requestHeader(CMD.WRITE, { offset: 0, length: 64 * KiB }), Buffer.alloc(30 * KiB, 0xee)]));
    c.socket.end();
    expect(await c.closedWithin()).toBe(true);
    await until(() => p.stats.closes === 1);
    expect(p.stats.writes).toBe(0);
    expect(p.bytes('disk0').equals(Buffer.alloc(DISK))).toBe(true);
    await until(() => server.connections() === 0);
  });
});

/** An export whose calls settle later, recording the order they were made in. */
class SlowProvider implements ExportProvider {
  readonly calls: string[] = [];
  readonly bytes = Buffer.alloc(4 * MiB);
  closes = 0;
  constructor(private readonly delayMs: () => number) {}
  list() {
    return [{ name: 'slow' }];
  }
  open(name: string): NbdExport {
    if (name !== 'slow') throw Object.assign(new Error(`unknown export ${name}`), { code: 'NBD_UNKNOWN_EXPORT' });
    const later = <T>(f: () => T) => new Promise<T>((resolve, reject) => setTimeout(() => {
      try {
        resolve(f());
      } catch (err) {
        reject(err);
      }
    }, this.delayMs()));
    return {
      name,
      size: this.bytes.length,
      readOnly: false,
      canTrim: true,
      canMultiConn: false,
      read: (offset, length) => {
        this.calls.push(`read ${offset}`);
        return later(() => Buffer.from(this.bytes.subarray(offset, offset + length)));
      },
      // Copies only when it resolves: legal, so the server must not reuse `data` before then.
      write: (offset, data) => {
        this.calls.push(`write ${offset}`);
        return later(() => void data.copy(this.bytes, offset));
      },
      writeZeroes: (offset) => {
        this.calls.push(`zero ${offset}`);
        if (offset === 0) throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
        return later(() => undefined);
      },
      trim: () => later(() => {
        throw Object.assign(new Error('no'), { errno: 'EPERM' });
      }),
      flush: () => later(() => {
        throw new Error('plain failure');
      }),
      close: () => void this.closes++,
    };
  }
}

describe('transmission: asynchronous exports', () => {
  it('calls the export in arrival order, keeps payloads intact until it settles, and maps its errors', async () => {
    let n = 0;
    const p = new SlowProvider(() => [30, 1, 15, 5][n++ % 4]!);
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'slow');
    const blocks = Array.from({ length: 12 }, (_, i) => pattern(200 * KiB, i + 1)); // spans socket chunks
    c.write(Buffer.concat(blocks.map((b, i) => Buffer.concat([RawClient.requestHeader(CMD.WRITE, { handle: BigInt(i), offset: i * 200 * KiB, length: b.length }), b]))));
    const handles = new Set<bigint>();
    for (let i = 0; i < blocks.length; i++) {
      const r = await c.simpleReply();
      expect(r.error).toBe(0);
      handles.add(r.handle);
    }
    expect(handles.size).toBe(blocks.length);
    expect(p.calls).toEqual(blocks.map((_, i) => `write ${i * 200 * KiB}`));
    blocks.forEach((b, i) => expect(p.bytes.subarray(i * 200 * KiB, (i + 1) * 200 * KiB).equals(b)).toBe(true));

    c.sendRequest(CMD.WRITE_ZEROES, { offset: 0, length: 512 });
    expect((await c.simpleReply()).error).toBe(E.ENOSPC); // thrown synchronously, code ENOSPC
    c.sendRequest(CMD.TRIM, { offset: 0, length: 512 });
    expect((await c.simpleReply()).error).toBe(E.EPERM); // rejected, errno 'EPERM'
    c.sendRequest(CMD.FLUSH);
    expect((await c.simpleReply()).error).toBe(E.EIO); // anything else
    expect(await c.disconnect()).toBe(true);
    await until(() => p.closes === 1);
  });

  it('answers a read whose export returns the wrong length with EIO', async () => {
    const base = new MemoryExportProvider({ d: { size: 4096 } });
    const p: ExportProvider = {
      list: () => base.list(),
      open: (name) => ({ ...base.open(name), read: () => Buffer.alloc(3) }),
    };
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'd');
    expect((await c.readAt(0, 512)).error).toBe(E.EIO);
    expect((await c.readAt(0, 512)).error).toBe(E.EIO); // framing intact
    c.destroy();
  });

  it('on DISC answers what is in flight, then closes and closes the export', async () => {
    const p = new SlowProvider(() => 50);
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'slow');
    c.sendRequest(CMD.WRITE, { handle: 5n, payload: Buffer.from('hello') });
    c.sendRequest(CMD.DISC);
    expect(await c.simpleReply()).toMatchObject({ error: 0, handle: 5n });
    expect(await c.closedWithin()).toBe(true);
    expect(p.bytes.subarray(0, 5).toString()).toBe('hello');
    await until(() => p.closes === 1);
  });

  it('close({graceful: true}) lets in-flight requests finish and their replies go out', async () => {
    const p = new SlowProvider(() => 100);
    p.bytes.write('persisted', 0);
    const { port, server } = await serve(p);
    const { client: c } = await RawClient.open(port, 'slow');
    c.sendRequest(CMD.READ, { handle: 9n, length: 9 });
    await until(() => p.calls.length === 1);
    const closing = server.close({ graceful: true });
    const r = await c.simpleReply(9);
    expect(r).toMatchObject({ error: 0, handle: 9n });
    expect(r.data!.toString()).toBe('persisted');
    expect(await c.closedWithin()).toBe(true);
    await closing;
    expect(p.closes).toBe(1);
    expect(server.connections()).toBe(0);
  });

  it('close({graceful: false}) drops connections at once but still closes exports', async () => {
    const p = new SlowProvider(() => 100);
    const { port, server } = await serve(p);
    const { client: c } = await RawClient.open(port, 'slow');
    c.sendRequest(CMD.READ, { handle: 9n, length: 9 });
    await until(() => p.calls.length === 1);
    await server.close({ graceful: false });
    expect(await c.closedWithin()).toBe(true);
    expect(p.closes).toBe(1);
  });
});
