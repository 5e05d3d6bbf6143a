// Property-based fuzzing of the request parser and the handshake: any split of the byte stream
// parses the same; junk never crashes anything; what the server sends stays well framed.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandshakeSession } from '../../src/nbd/handshake.js';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import { checkRequest } from '../../src/nbd/request-check.js';
import { RequestParser, type RequestHeader } from '../../src/nbd/request-parser.js';
import type { NbdServer } from '../../src/nbd/server.js';
import { closeServers, serve } from './harness.js';
import { OPTION_REPLY_MAGIC, RawClient } from './raw-client.js';

const RUNS = 300;

interface Wire {
  type: number;
  flags: number;
  handle: bigint;
  offset: bigint;
  length: number;
  reject: number;
  retain: boolean;
}

const wireRequest = fc.record({
  type: fc.oneof(fc.constantFrom(0, 1, 1, 1, 2, 3, 4, 6), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.integer({ min: 0, max: 0xffff }),
  handle: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  offset: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  length: fc.integer({ min: 0, max: 3000 }),
  reject: fc.constantFrom(0, 0, 0, 22, 28),
  retain: fc.boolean(),
});

function encode(reqs: Wire[]): { bytes: Buffer; payloads: Buffer[] } {
  const parts: Buffer[] = [];
  const payloads: Buffer[] = [];
  reqs.forEach((r, i) => {
    parts.push(RawClient.requestHeader(r.type, { flags: r.flags, handle: r.handle, offset: r.offset, length: r.length }));
    const payload = r.type === 1 ? Buffer.alloc(r.length, (i * 37 + 11) & 0xff) : Buffer.alloc(0);
    payloads.push(payload);
    parts.push(payload);
  });
  return { bytes: Buffer.concat(parts), payloads };
}

/** Splits bytes at the given cut points (each taken modulo the length). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length ? c % bytes.length : 0)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) chunks.push(bytes.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  if (prev < bytes.length) chunks.push(bytes.subarray(prev));
  return chunks;
}

describe('request parser', () => {
  it('parses any split of a request stream into the same requests and payloads', () => {
    fc.assert(
      fc.property(fc.array(wireRequest, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (reqs, cuts) => {
        const { bytes, payloads } = encode(reqs);
        const seen: { req: RequestHeader; error: number; payload: Buffer | null; copy: Buffer | null }[] = [];
        let i = 0;
        const parser = new RequestParser({
          check: () => reqs[i]!.reject,
          request: (req, error, payload) => {
            seen.push({ req, error, payload, copy: payload && Buffer.from(payload) });
            return reqs[i++]!.retain;
          },
          badMagic: () => {
            throw new Error('no bad magic in this stream');
          },
          saturated: () => false,
        });
        for (const chunk of split(bytes, cuts)) parser.push(chunk);
        expect(parser.midRequest).toBe(false);
        expect(seen.length).toBe(reqs.length);
        reqs.forEach((r, k) => {
          const s = seen[k]!;
          expect(s.req.type).toBe(r.type);
          expect(s.req.flags).toBe(r.flags);
          expect((BigInt(s.req.handleHi) << 32n) | BigInt(s.req.handleLo)).toBe(r.handle);
          expect(s.req.offset).toBe(Number(r.offset));
          expect(s.req.length).toBe(r.length);
          expect(s.error).toBe(r.reject);
          const wantPayload = r.type === 1 && r.length > 0 && r.reject === 0;
          expect(s.payload !== null).toBe(wantPayload);
          if (wantPayload) expect(s.copy!.equals(payloads[k]!)).toBe(true);
          // A retained payload must be left alone by the parser afterwards.
          if (wantPayload && r.retain) expect(s.payload!.equals(s.copy!)).toBe(true);
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('a sink that saturates between requests gets the same requests, in order, once it resumes (volatile chunks too)', () => {
    fc.assert(
      fc.property(
        fc.array(wireRequest, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.boolean(), { maxLength: 60 }),
        fc.boolean(),
        (reqs, cuts, saturations, volatile) => {
          const { bytes, payloads } = encode(reqs);
          const seen: { req: RequestHeader; payload: Buffer | null }[] = [];
          let asked = 0;
          let requestsWhileSaturated = 0;
          let saturated = false;
          const parser = new RequestParser({
            check: () => 0,
            request: (req, _error, payload) => {
              if (saturated) requestsWhileSaturated++;
              seen.push({ req, payload: payload && Buffer.from(payload) });
              return false;
            },
            badMagic: () => {
              throw new Error('no bad magic in this stream');
            },
            saturated: () => (saturated = saturations[asked++] ?? false),
          });
          for (const chunk of split(bytes, cuts)) {
            // A volatile chunk is scribbled over once push() returns: what the parser held must be a copy.
            const wire = volatile ? Buffer.from(chunk) : chunk;
            parser.push(wire, volatile);
            if (volatile) wire.fill(0xee);
          }
          while (parser.holding) {
            saturated = false;
            parser.resume();
          }
          expect(requestsWhileSaturated).toBe(0);
          expect(parser.midRequest).toBe(false);
          expect(seen.map((x) => x.req.handleLo)).toEqual(reqs.map((r) => Number(r.handle & 0xffff_ffffn)));
          reqs.forEach((r, k) => {
            if (r.type === 1 && r.length > 0) expect(seen[k]!.payload!.equals(payloads[k]!)).toBe(true);
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('stops at the first bad magic and never reports a request after it', () => {
    fc.assert(
      fc.property(fc.array(wireRequest, { maxLength: 5 }), fc.uint8Array({ minLength: 28, maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), (reqs, junk, cuts) => {
        fc.pre(Buffer.from(junk).readUInt32BE(0) !== 0x25609513);
        const good = encode(reqs).bytes;
        let requests = 0;
        let bad = 0;
        const parser = new RequestParser({ check: () => 0, request: () => (requests++, false), badMagic: () => void bad++, saturated: () => false });
        for (const chunk of split(Buffer.concat([good, Buffer.from(junk), good]), cuts)) parser.push(chunk);
        expect(bad).toBe(1);
        expect(requests).toBe(reqs.length);
        expect(parser.stopped).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('lets through to the export only well-formed, in-range requests', () => {
    const provider = new MemoryExportProvider({ rw: { size: 1 << 20 }, ro: { size: 1 << 20, readOnly: true } });
    const exports = [provider.open('rw'), provider.open('ro')];
    fc.assert(
      fc.property(wireRequest, fc.boolean(), (r, ro) => {
        const exp = exports[ro ? 1 : 0]!;
        const req = { type: r.type, flags: r.flags, handleHi: 0, handleLo: 0, offset: Number(r.offset % 2n ** 21n), length: r.length * 400 };
        if (checkRequest(req, exp, 1 << 20) !== 0 && req.type !== 2) return;
        if (req.type === 2) return;
        expect([0, 1, 3, 4, 6]).toContain(req.type);
        if (req.type !== 3) {
          expect(req.length).toBeGreaterThan(0);
          expect(req.offset + req.length).toBeLessThanOrEqual(exp.size);
        } else expect(req.offset + req.length).toBe(0);
        if (req.type !== 0 && req.type !== 3) expect(exp.readOnly).toBe(false);
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('handshake', () => {
  const optionCodes = fc.constantFrom(1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 0, 0xffffffff);
  const infoData = fc.record({ name: fc.constantFrom('disk0', 'nope', '', 'disk0@seq=12'), infos: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }) }).map(({ name, infos }) => RawClient.infoData(name, infos));
  const option = fc.record({ code: optionCodes, data: fc.oneof(infoData, fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), fc.constant(Buffer.alloc(0))) });
  const encodeOption = (code: number, data: Buffer) => {
    const h = Buffer.alloc(16);
    h.write('IHAVEOPT', 0, 'latin1');
    h.writeUInt32BE(code >>> 0, 8);
    h.writeUInt32BE(data.length, 12);
    return Buffer.concat([h, data]);
  };

  it('answers any option sequence with well-framed replies, and ends or enters transmission cleanly', async () => {
    const provider = new MemoryExportProvider({ disk0: { size: 4096 }, 'disk0@seq=12': { size: 512, readOnly: true } });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 7 }),
        fc.array(option, { maxLength: 8 }),
        fc.option(fc.uint8Array({ maxLength: 40 })),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (clientFlags, options, junk, cuts) => {
          const sent: Buffer[] = [];
          const session = new HandshakeSession({ provider, maxPayloadBytes: 1 << 20, refusal: null, send: (b) => sent.push(b), log: () => {} });
          const outcome = session.run();
          const flags = Buffer.alloc(4);
          flags.writeUInt32BE(clientFlags);
          const input = Buffer.concat([flags, ...options.map((o) => encodeOption(o.code, o.data)), junk ? Buffer.from(junk) : Buffer.alloc(0)]);
          for (const chunk of split(input, cuts)) {
            session.push(chunk);
            await Promise.resolve();
          }
          session.end();
          const result = await outcome;
          if (result.kind === 'transmission') await result.export.close();
          // Parse what the server sent: greeting, then option replies, maybe an EXPORT_NAME tail.
          const out = Buffer.concat(sent);
          expect(out.subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
          let pos = 18;
          const sentCodes = new Set(options.map((o) => o.code >>> 0));
          while (pos < out.length) {
            if (!out.subarray(pos, pos + 8).equals(OPTION_REPLY_MAGIC)) {
              // Only the NBD_OPT_EXPORT_NAME tail may follow: size, flags, maybe 124 zeroes.
              expect(result.kind).toBe('transmission');
              expect([10, 134]).toContain(out.length - pos);
              pos = out.length;
              break;
            }
            expect(sentCodes.has(out.readUInt32BE(pos + 8))).toBe(true);
            pos += 20 + out.readUInt32BE(pos + 16);
          }
          expect(pos).toBeLessThanOrEqual(out.length);
        },
      ),
      { numRuns: RUNS },
    );
    expect(provider.stats.opens).toBe(provider.stats.closes);
  });
});

describe('server under junk', () => {
  let server: NbdServer;
  let port: number;
  let provider: MemoryExportProvider;
  beforeAll(async () => {
    provider = new MemoryExportProvider({ disk0: { size: 64 * 1024 } });
    ({ server, port } = await serve(provider, { handshakeTimeoutMs: 500 }));
  });
  afterAll(closeServers);

  it('survives random bytes in the handshake and in transmission; good clients still get served', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 300 }), async (afterGo, junk) => {
        const c = afterGo ? (await RawClient.open(port, 'disk0')).client : await RawClient.connect(port);
        c.write(Buffer.from(junk));
        await new Promise((r) => setTimeout(r, 2));
        c.destroy();
      }),
      { numRuns: 60 },
    );
    const { client } = await RawClient.open(port, 'disk0');
    expect((await client.writeAt(0, Buffer.from('still here'))).error).toBe(0);
    expect((await client.readAt(0, 10)).data!.toString()).toBe('still here');
    client.destroy();
    expect(server.connections()).toBeGreaterThanOrEqual(0);
  });
});
