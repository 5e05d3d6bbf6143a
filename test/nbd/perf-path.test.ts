// The request path's two ways of reading a connection (server.ts readPath): 'buffer' (one reusable
// read buffer per connection, socket-reads.ts) and 'stream' (Node's 'data' events, the fallback and
// the TLS path) must behave exactly the same: same replies, same bytes in the export, for any split
// of the byte stream, for exports that copy at once and for exports that keep a write's payload
// until their promise settles (whose buffers the parser then recycles).

import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExportProvider, NbdExport } from '../../src/nbd/export.js';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import { adoptWithReadBuffer } from '../../src/nbd/socket-reads.js';
import { closeServers, KiB, pattern, serve } from './harness.js';
import { RawClient } from './raw-client.js';

const SIZE = 8 * 1024 * KiB;
const CMD = { READ: 0, WRITE: 1, FLUSH: 3, TRIM: 4, WRITE_ZEROES: 6 };

afterEach(closeServers);

/** Deterministic pseudo-random numbers (xorshift32). */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** Wraps a memory export so every write copies its payload only when its promise settles. */
function lateCopying(base: MemoryExportProvider): ExportProvider {
  return {
    list: () => base.list(),
    open(name) {
      const exp = base.open(name);
      const later = <T>(f: () => T) => new Promise<T>((resolve) => setTimeout(() => resolve(f()), 0));
      const wrapped: NbdExport = {
        ...exp,
        read: (o, l) => later(() => exp.read(o, l) as Buffer),
        write: (o, data, fua) => later(() => exp.write(o, data, fua) as void),
        writeZeroes: (o, l, fua) => later(() => exp.writeZeroes(o, l, fua) as void),
      };
      return wrapped;
    },
  };
}

interface Outcome {
  replies: string[];
  bytes: Buffer;
}

/** One scripted session: a pipelined request stream sent in random pieces; returns replies by handle and the final bytes. */
async function session(readPath: 'buffer' | 'stream', late: boolean, seed: number): Promise<Outcome & { paths: { buffer: number; stream: number } }> {
  const mem = new MemoryExportProvider({ d: { size: SIZE } });
  const { server, port } = await serve(late ? lateCopying(mem) : mem, { readPath });
  const { client } = await RawClient.open(port, 'd');
  const rand = rng(seed);
  const requests: Buffer[] = [];
  const expectData = new Map<bigint, number>();
  const sizes = [1, 512, 4 * KiB, 64 * KiB, 64 * KiB + 28, 100 * KiB, 300 * KiB];
  for (let i = 0; i < 120; i++) {
    const handle = BigInt(i + 1);
    const kind = rand(10);
    const length = sizes[rand(sizes.length)]!;
    const offset = rand(SIZE / 512) * 512;
    if (kind < 6) {
      // Writes, a few of them past the end (ENOSPC, payload consumed).
      const payload = pattern(length, seed * 1000 + i);
      const at = kind === 5 ? SIZE - 256 : Math.min(offset, SIZE - length);
      requests.push(RawClient.requestHeader(CMD.WRITE, { handle, offset: at, length }), payload);
    } else if (kind < 8) {
      const at = Math.min(offset, SIZE - length);
      requests.push(RawClient.requestHeader(CMD.READ, { handle, offset: at, length }));
      expectData.set(handle, length);
    } else if (kind === 8) {
      requests.push(RawClient.requestHeader(CMD.WRITE_ZEROES, { handle, offset: Math.min(offset, SIZE - length), length }));
    } else {
      requests.push(RawClient.requestHeader(CMD.FLUSH, { handle }));
    }
  }
  // Send in random pieces, sometimes waiting, so reads end anywhere inside headers and payloads.
  const stream = Buffer.concat(requests);
  for (let pos = 0; pos < stream.length; ) {
    const n = Math.min(stream.length - pos, 1 + rand(3) === 1 ? rand(40) : rand(200 * KiB));
    client.write(stream.subarray(pos, pos + n));
    pos += n;
    if (rand(4) === 0) await new Promise((r) => setTimeout(r, 1));
  }
  // Replies come in completion order; gather them by handle (reads carry data only on success).
  const replies = new Map<bigint, string>();
  while (replies.size < 120) {
    const h = await client.read(16, 10_000);
    const error = h.readUInt32BE(4);
    const handle = h.readBigUInt64BE(8);
    const length = expectData.get(handle);
    const data = error === 0 && length ? await client.read(length, 10_000) : null;
    replies.set(handle, `${error}${data ? ` ${data.length} ${createHash('sha256').update(data).digest('hex').slice(0, 16)}` : ''}`);
  }
  expect(await client.disconnect()).toBe(true);
  const ordered = [...replies.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([h, r]) => `${h}:${r}`);
  return { replies: ordered, bytes: Buffer.from(mem.bytes('d')), paths: server.readPaths() };
}

describe('read paths', () => {
  for (const late of [false, true]) {
    it(`'buffer' and 'stream' give the same replies and bytes for any split of the stream (${late ? 'export copies when it settles' : 'export copies at once'})`, async () => {
      for (const seed of [1, 2, 3]) {
        const a = await session('buffer', late, seed);
        const b = await session('stream', late, seed);
        expect(a.paths).toEqual({ buffer: 1, stream: 0 });
        expect(b.paths).toEqual({ buffer: 0, stream: 1 });
        expect(a.replies).toEqual(b.replies);
        expect(a.replies.filter((r) => r.endsWith(':28')).length).toBeGreaterThan(0); // some ENOSPC
        expect(a.bytes.equals(b.bytes)).toBe(true);
      }
    });
  }

  it('adoptWithReadBuffer falls back (null, socket untouched) when the handle is not what it expects', () => {
    const fake = Object.assign(new net.Socket(), { _handle: { readStart() {} } });
    expect(adoptWithReadBuffer(fake, Buffer.alloc(16), () => undefined)).toBeNull();
    expect(fake.destroyed).toBe(false);
    expect(typeof fake._handle.readStart).toBe('function');
    (fake as { _handle: unknown })._handle = null;
    fake.destroy();
  });
});
