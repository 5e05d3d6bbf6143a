// What the server accepts and how it bounds one connection: READ/WRITE payloads up to 64 MiB for
// every client however it negotiated (32 MiB advertised), larger ones refused with the protocol's
// error, and at most 128 requests in flight and its share of 16 MiB of replies owed across the
// server (plus one reply) before it stops reading requests, even when one socket read holds many
// requests.

import { afterEach, describe, expect, it } from 'vitest';
import type { ExportProvider } from '../../src/nbd/export.js';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import { closeServers, KiB, MiB, pattern, serve, until } from './harness.js';
import { RawClient } from './raw-client.js';

// Wire values (proto.md), spelled out so the tests do not trust the code under test.
const CMD = { READ: 0, WRITE: 1 };
const INFO_BLOCK_SIZE = 3;
const REP_INFO = 3;
const E = { EINVAL: 22 };

afterEach(closeServers);

describe('payload limits', () => {
  it('a client that picked its export with NBD_OPT_EXPORT_NAME writes and reads back 48 MiB, and reads 64 MiB at once', async () => {
    const size = 65 * MiB;
    const p = new MemoryExportProvider({ big: { size } });
    const { port } = await serve(p);
    const { client: c, size: got } = await RawClient.openByExportName(port, 'big');
    expect(got).toBe(size);
    const data = pattern(48 * MiB, 48);
    expect((await c.writeAt(MiB, data, 0, 1n)).error).toBe(0);
    expect(p.bytes('big').subarray(MiB, 49 * MiB).equals(data)).toBe(true);
    const back = await c.readAt(MiB, 48 * MiB, 2n);
    expect(back.error).toBe(0);
    expect(back.data!.equals(data)).toBe(true);
    // 64 MiB, the largest payload: one reply as large as the whole bound on replies owed.
    const whole = await c.readAt(0, 64 * MiB, 3n);
    expect(whole.error).toBe(0);
    expect(whole.data!.equals(p.bytes('big').subarray(0, 64 * MiB))).toBe(true);
    expect(await c.disconnect()).toBe(true);
  });

  it('refuses a READ or WRITE over 64 MiB with EINVAL (the payload read and discarded) and the connection stays usable', async () => {
    const size = 65 * MiB;
    const p = new MemoryExportProvider({ big: { size } });
    const { port } = await serve(p);
    const { client: c } = await RawClient.openByExportName(port, 'big');
    const before = { ...p.stats };
    expect((await c.readAt(0, 64 * MiB + 1, 1n)).error).toBe(E.EINVAL);
    expect((await c.writeAt(0, Buffer.alloc(64 * MiB + 1, 0x5a), 0, 2n)).error).toBe(E.EINVAL);
    expect(p.stats).toEqual(before);
    // Still in step: the next request gets its own reply, and nothing was written.
    const r = await c.readAt(size - 4 * KiB, 4 * KiB, 3n);
    expect(r).toMatchObject({ error: 0, handle: 3n });
    expect(p.bytes('big').equals(Buffer.alloc(size))).toBe(true);
    expect(await c.disconnect()).toBe(true);
  });

  it('advertises the smaller of maxPayloadBytes and 32 MiB as the maximum block size, and enforces maxPayloadBytes', async () => {
    const p = new MemoryExportProvider({ d: { size: MiB } });
    const { port } = await serve(p, { maxPayloadBytes: 64 * KiB });
    const c = await RawClient.connect(port);
    await c.start();
    const { replies } = await c.go('d', [INFO_BLOCK_SIZE]);
    const bs = replies.find((r) => r.type === REP_INFO && r.data.readUInt16BE(0) === INFO_BLOCK_SIZE)!;
    expect([bs.data.readUInt32BE(2), bs.data.readUInt32BE(6), bs.data.readUInt32BE(10)]).toEqual([1, 4096, 64 * KiB]);
    expect((await c.readAt(0, 64 * KiB, 1n)).error).toBe(0);
    expect((await c.readAt(0, 64 * KiB + 1, 2n)).error).toBe(E.EINVAL);
    expect(await c.disconnect()).toBe(true);
  });
});

describe('per-connection bounds hold inside one socket read', () => {
  it('stops calling the export once 16 MiB of replies are owed (one connection: the whole server share), and answers every request once the client reads', async () => {
    const READS = 40;
    const LEN = 8 * MiB;
    const p = new MemoryExportProvider({ big: { size: 8 * LEN, data: pattern(8 * LEN, 7) } });
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'big');
    // The client reads nothing for now: replies pile up on the server's side.
    c.socket.pause();
    const reads = p.stats.reads;
    c.write(Buffer.concat(Array.from({ length: READS }, (_, i) => RawClient.requestHeader(CMD.READ, { handle: BigInt(i), offset: (i % 8) * LEN, length: LEN }))));
    await until(() => p.stats.reads - reads >= 2);
    // 16 MiB owed after 2 replies; a few more may have gone into the kernel's socket buffers, never all 40.
    expect(p.stats.reads - reads).toBeLessThanOrEqual(6);
    c.socket.resume();
    for (let i = 0; i < READS; i++) {
      const r = await c.simpleReply(LEN);
      expect(r.error).toBe(0);
      const at = Number(r.handle % 8n) * LEN;
      expect(r.data!.equals(p.bytes('big').subarray(at, at + LEN))).toBe(true);
    }
    expect(p.stats.reads - reads).toBe(READS);
    expect(await c.disconnect()).toBe(true);
  }, 30_000);

  it('bounds the replies owed across connections: four readers that read nothing share the 16 MiB', async () => {
    const READS = 40;
    const LEN = 2 * MiB;
    const p = new MemoryExportProvider({ big: { size: 8 * LEN, data: pattern(8 * LEN, 9) } });
    const { port } = await serve(p);
    const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(port, 'big').then((o) => o.client)));
    const reads = p.stats.reads;
    for (const c of clients) {
      c.socket.pause();
      c.write(Buffer.concat(Array.from({ length: READS }, (_, i) => RawClient.requestHeader(CMD.READ, { handle: BigInt(i), offset: (i % 8) * LEN, length: LEN }))));
    }
    // Each connection may owe 4 MiB (two replies) plus one reply; the kernel's socket buffers take a
    // few more per connection. With a bound per connection alone (64 MiB each) all 160 would be read.
    await until(() => p.stats.reads - reads >= 4 * 2, { what: 'every connection answers its share' });
    expect(p.stats.reads - reads).toBeLessThanOrEqual(4 * (2 + 1 + 5));
    for (const c of clients) c.socket.resume();
    for (const c of clients) {
      for (let i = 0; i < READS; i++) {
        const r = await c.simpleReply(LEN);
        expect(r.error).toBe(0);
        const at = Number(r.handle % 8n) * LEN;
        expect(r.data!.equals(p.bytes('big').subarray(at, at + LEN))).toBe(true);
      }
      expect(await c.disconnect()).toBe(true);
    }
    expect(p.stats.reads - reads).toBe(4 * READS);
  }, 30_000);

  it('has at most 128 requests in flight, however many one socket read holds', async () => {
    const REQUESTS = 300;
    const base = new MemoryExportProvider({ d: { size: MiB, data: pattern(MiB, 5) } });
    const held: (() => void)[] = [];
    let inFlight = 0;
    let inFlightMax = 0;
    let holding = true;
    const p: ExportProvider = {
      list: () => base.list(),
      open(name) {
        const exp = base.open(name);
        return {
          ...exp,
          read: (offset, length) =>
            new Promise<Buffer>((resolve) => {
              inFlightMax = Math.max(inFlightMax, ++inFlight);
              const answer = () => {
                inFlight--;
                resolve(exp.read(offset, length) as Buffer);
              };
              if (holding) held.push(answer);
              else setImmediate(answer);
            }),
        };
      },
    };
    const { port } = await serve(p);
    const { client: c } = await RawClient.open(port, 'd');
    c.write(Buffer.concat(Array.from({ length: REQUESTS }, (_, i) => RawClient.requestHeader(CMD.READ, { handle: BigInt(i), offset: i * 512, length: 512 }))));
    try {
      await until(() => held.length >= 128);
      expect(held.length).toBe(128);
    } finally {
      // Answer what is held even when an expectation failed, so the server can close.
      holding = false;
      for (const answer of held.splice(0)) answer();
    }
    const handles = new Set<bigint>();
    for (let i = 0; i < REQUESTS; i++) {
      const r = await c.simpleReply(512);
      expect(r.error).toBe(0);
      const at = Number(r.handle) * 512;
      expect(r.data!.equals(base.bytes('d').subarray(at, at + 512))).toBe(true);
      handles.add(r.handle);
    }
    expect(handles.size).toBe(REQUESTS);
    expect(inFlightMax).toBe(128);
    expect(await c.disconnect()).toBe(true);
  });
});
