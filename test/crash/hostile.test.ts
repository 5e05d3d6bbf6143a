// Hostile clients against the server `rewind serve` runs (GitHub issue 5, item 6), in process over
// a real Store: hundreds of connections at once all served; over maxConnections a clear refusal
// while admitted connections keep working; stalled handshakes closed after the timeout; random
// garbage and mutated requests (fast-check) never crash the server, and a rejected request changes
// no volume byte and no journal byte; a read-only "disk0@seq=N" export never changes.

import fc from 'fast-check';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { initStore, Store } from '../../src/index.js';
import { StoreExports } from '../../src/serve/exports.js';
import { startNbdServer, type NbdServer, type NbdServerOptions } from '../../src/nbd/server.js';
import { RawClient } from '../nbd/raw-client.js';
import { prng, randomBytes } from '../helpers/model.js';
import { BLOCK, KiB, MiB, NBD_EINVAL, NBD_EPERM, patternBlock, removeTempDirs, sha256, tempDir } from './helpers.js';
import { until } from '../helpers/until.js';

const SIZE = 2 * MiB;
const REQUEST_MAGIC = 0x25609513;
const REP_ERR_POLICY = 0x80000002;
const FLAGS_ALLOWED: Record<number, number> = { 0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 6: 3 };
const FEED = 0xfeedn;

const live: { servers: NbdServer[]; stores: Store[]; clients: Set<RawClient> } = { servers: [], stores: [], clients: new Set() };
const counts = { held: 0, refusedPolicy: 0, refusedDropped: 0, stalled: 0, fuzzMutated: 0, fuzzRejected: 0, fuzzGarbage: 0, fuzzViewSeqs: 0, viewReqs: 0 };

afterEach(async () => {
  for (const c of live.clients) c.destroy();
  live.clients.clear();
  await Promise.all(live.servers.splice(0).map((s) => s.close({ graceful: false })));
  await Promise.all(live.stores.splice(0).map((s) => s.close().catch(() => undefined)));
});
afterAll(() => {
  removeTempDirs();
  console.log(
    `hostile: ${counts.held} connections held at once, refused over the limit ${counts.refusedPolicy} (policy) + ${counts.refusedDropped} (dropped), ` +
      `${counts.stalled} stalled handshakes closed, fuzz: ${counts.fuzzMutated} mutated requests (${counts.fuzzRejected} rejected), ${counts.fuzzGarbage} garbage streams, ` +
      `${counts.fuzzViewSeqs} request sequences (${counts.viewReqs} requests) against disk0@seq=N`,
  );
});

async function setup(opts: Partial<NbdServerOptions> = {}, window = 'count:8') {
  const dir = path.join(tempDir(), 'store');
  await initStore(dir, { volumes: [{ name: 'disk0', size: SIZE }], window });
  const store = await Store.open(dir, { threads: 1 });
  live.stores.push(store);
  const logs: string[] = [];
  const server = await startNbdServer({ provider: new StoreExports(store), listen: { host: '127.0.0.1', port: 0 }, log: (m) => logs.push(m), ...opts });
  live.servers.push(server);
  const port = (server.address() as { port: number }).port;
  return { dir, store, server, port, logs };
}

async function open(port: number, name = 'disk0'): Promise<RawClient> {
  const c = await RawClient.connect(port);
  live.clients.add(c);
  void c.closed.then(() => live.clients.delete(c));
  await c.start();
  await c.go(name);
  return c;
}

describe('many connections', () => {
  it('300 connections held at once are all served: handshake, write, flush, read back', async () => {
    const N = 300;
    const { dir, store, server, port } = await setup({ maxConnections: 512 });
    const t0 = Date.now();
    const clients = await Promise.all(Array.from({ length: N }, () => open(port)));
    expect(server.connections()).toBe(N);
    counts.held = Math.max(counts.held, server.connections());
    await Promise.all(
      clients.map(async (c, i) => {
        const w = await c.writeAt(i * BLOCK, patternBlock(i + 1, i), 0, BigInt(i + 1));
        expect(w.error).toBe(0);
      }),
    );
    await Promise.all(
      clients.map(async (c, i) => {
        c.sendRequest(3, { handle: 7n });
        expect((await c.simpleReply()).error).toBe(0);
        // Read what a neighbour wrote (every write was acknowledged before any read was sent).
        const j = (i + 1) % N;
        const r = await c.readAt(j * BLOCK, BLOCK);
        expect(r.error).toBe(0);
        expect(r.data!.equals(patternBlock(j + 1, j))).toBe(true);
      }),
    );
    expect(store.lastSeq).toBe(N);
    const results = await Promise.all(clients.map((c) => c.disconnect()));
    expect(results.every(Boolean)).toBe(true);
    await until(() => server.connections() === 0);
    const prod = readFileSync(path.join(dir, 'volumes', 'disk0'));
    for (let i = 0; i < N; i++) expect(prod.subarray(i * BLOCK, (i + 1) * BLOCK).equals(patternBlock(i + 1, i))).toBe(true);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);

  it('over maxConnections: extra connections get a clear refusal (or are dropped), admitted ones keep working', async () => {
    const MAX = 40;
    const { store, server, port } = await setup({ maxConnections: MAX });
    const admitted = await Promise.all(Array.from({ length: MAX }, () => open(port)));
    expect(server.connections()).toBe(MAX);
    // Extra connections that stay: at most 16 wait in the handshake (greeted), the rest are dropped at once.
    const EXTRA = 24;
    const extras = await Promise.all(
      Array.from({ length: EXTRA }, async () => {
        const c = await RawClient.connect(port);
        live.clients.add(c);
        try {
          await c.greeting();
          return c;
        } catch {
          c.destroy();
          return null;
        }
      }),
    );
    const waiting = extras.filter((c): c is RawClient => c !== null);
    expect(waiting.length).toBe(16);
    counts.refusedDropped += EXTRA - waiting.length;
    // Those waiting are refused clearly on every option.
    for (const c of waiting) {
      c.sendClientFlags(3);
      const err = await c.go('disk0').then(() => 'admitted', (e: Error) => e.message);
      expect(err).toMatch(new RegExp(`NBD_OPT_GO failed: reply type 0x${REP_ERR_POLICY.toString(16)} rewind NBD server: connection limit of 40 reached`));
      counts.refusedPolicy++;
      c.destroy();
    }
    // Extra connections that come and go one at a time all get the refusal.
    for (let i = 0; i < 10; i++) {
      const c = await RawClient.connect(port);
      live.clients.add(c);
      await c.start();
      await expect(c.go('disk0')).rejects.toThrow(/reply type 0x80000002 .*connection limit of 40 reached/);
      counts.refusedPolicy++;
      c.destroy();
    }
    expect(server.connections()).toBe(MAX);
    // The admitted ones were not disturbed.
    await Promise.all(
      admitted.map(async (c, i) => {
        expect((await c.writeAt(i * BLOCK, patternBlock(1000 + i, i))).error).toBe(0);
        const r = await c.readAt(i * BLOCK, BLOCK);
        expect(r.data!.equals(patternBlock(1000 + i, i))).toBe(true);
      }),
    );
    expect(store.lastSeq).toBe(MAX);
    // Room again once some leave.
    await Promise.all(admitted.slice(0, 5).map((c) => c.disconnect()));
    await until(() => server.connections() === MAX - 5);
    const late = await open(port);
    expect((await late.readAt(0, BLOCK)).data!.equals(patternBlock(1000, 0))).toBe(true);
  }, 30_000);

  it('stalled handshakes (nothing, half the flags, half an option, short option data) are closed after the timeout; others are served meanwhile', async () => {
    const TIMEOUT = 300;
    const { server, port, logs } = await setup({ handshakeTimeoutMs: TIMEOUT });
    const kinds: ((c: RawClient) => Promise<void>)[] = [
      async () => {},
      async (c) => {
        await c.greeting();
        c.write(Buffer.from([0, 0]));
      },
      async (c) => {
        await c.start();
        c.write(Buffer.from('IHAVEOPT'));
      },
      async (c) => {
        await c.start();
        const h = Buffer.alloc(16);
        Buffer.from('IHAVEOPT').copy(h);
        h.writeUInt32BE(7, 8);
        h.writeUInt32BE(100, 12);
        c.write(Buffer.concat([h, Buffer.alloc(10)]));
      },
    ];
    const t0 = Date.now();
    const stalled = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const c = await RawClient.connect(port);
        live.clients.add(c);
        await kinds[i % kinds.length](c);
        return c;
      }),
    );
    // A well-behaved client is served while they stall.
    const good = await open(port);
    expect((await good.readAt(0, BLOCK)).error).toBe(0);
    const closed = await Promise.all(stalled.map((c) => c.closedWithin(TIMEOUT + 3000)));
    const elapsed = Date.now() - t0;
    expect(closed.every(Boolean), 'every stalled handshake is closed').toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 20);
    counts.stalled += closed.length;
    expect(logs.filter((l) => /handshake not finished within 300 ms/.test(l)).length).toBe(24);
    // The connection in transmission is not subject to the handshake timeout.
    expect((await good.readAt(0, BLOCK)).error).toBe(0);
    await until(() => server.connections() === 1);
  }, 30_000);
});

describe('fuzzing with fast-check', () => {
  /** Everything a rejected request must leave alone. */
  function snapshot(dir: string, store: Store) {
    const journal = path.join(dir, 'journal');
    const jbytes = readdirSync(journal).reduce((n, f) => n + statSync(path.join(journal, f)).size, 0);
    // Production as the store reads it (queued production writes included).
    return { lastSeq: store.lastSeq, production: sha256(store.read('disk0', 0, SIZE)), journal: jbytes };
  }

  /** Reads simple replies for the given handles (any order); data follows successful reads. */
  async function replies(c: RawClient, readLengths: Map<bigint, number>, n: number): Promise<Map<bigint, { error: number; data: Buffer | null }>> {
    const out = new Map<bigint, { error: number; data: Buffer | null }>();
    for (let i = 0; i < n; i++) {
      const h = await c.read(16, 5000);
      expect(h.readUInt32BE(0)).toBe(0x67446698);
      const error = h.readUInt32BE(4);
      const handle = h.readBigUInt64BE(8);
      expect(readLengths.has(handle), `reply for a handle that was sent (${handle})`).toBe(true);
      expect(out.has(handle), `one reply per request (${handle})`).toBe(false);
      const len = readLengths.get(handle)!;
      out.set(handle, { error, data: error === 0 && len > 0 ? await c.read(len, 5000) : null });
    }
    return out;
  }

  const request = fc.record({
    type: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 1, 2, 3, 4, 6), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
    flags: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 2, 3), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
    offset: fc.oneof(
      fc.integer({ min: 0, max: SIZE }),
      fc.constantFrom(SIZE - 1, SIZE, SIZE + BLOCK, 2 ** 53, 2 ** 63),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    ),
    length: fc.oneof(fc.constantFrom(0, 1, 4096, 64 * KiB, 64 * KiB + 1), fc.integer({ min: 0, max: 70_000 }), fc.constantFrom(2 ** 32 - 1, 2 ** 31)),
    badMagic: fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 2 ** 32 - 1 }), weight: 1 }),
    seed: fc.integer({ min: 1, max: 2 ** 31 }),
  });

  it('mutated requests: answered or rejected, never a crash; a rejected one changes no volume byte and no journal byte', async () => {
    const { dir, store, server, port } = await setup({ maxPayloadBytes: 64 * KiB, handshakeTimeoutMs: 1000 });
    const rand = prng(3);
    for (let i = 0; i < 40; i++) await store.write('disk0', Math.floor(rand() * (SIZE - 8192)), randomBytes(rand, 1 + Math.floor(rand() * 8192)));
    await store.flush();
    let c = await open(port);
    let handle = 100n;
    await fc.assert(
      fc.asyncProperty(request, async (q) => {
        counts.fuzzMutated++;
        if (c.socket.destroyed) c = await open(port);
        const before = snapshot(dir, store);
        const type = q.type;
        // A write's payload is always on the wire (the server consumes it even when it rejects the write).
        const length = type === 1 ? Math.min(q.length, 70_000) : q.length;
        const payload = type === 1 ? randomBytes(prng(q.seed), length) : undefined;
        const h = handle++;
        const header = RawClient.requestHeader(type, { flags: q.flags, handle: h, offset: BigInt(q.offset), length, magic: q.badMagic ?? REQUEST_MAGIC });
        c.write(payload ? Buffer.concat([header, payload]) : header);
        if (q.badMagic !== null && q.badMagic !== REQUEST_MAGIC) {
          expect(await c.closedWithin(3000), 'a bad magic closes the connection').toBe(true);
          c.destroy();
          counts.fuzzRejected++;
          expect(snapshot(dir, store)).toEqual(before);
          return;
        }
        if (type === 2) {
          expect(await c.closedWithin(3000), 'DISC ends the connection').toBe(true);
          c.destroy();
          expect(snapshot(dir, store)).toEqual(before);
          return;
        }
        // A valid read after it proves the stream is still in step.
        c.sendRequest(0, { handle: FEED, offset: 0, length: 16 });
        const got = await replies(c, new Map([[h, type === 0 ? length : 0], [FEED, 16]]), 2);
        expect(got.get(FEED)!.error).toBe(0);
        const error = got.get(h)!.error;
        if (FLAGS_ALLOWED[type] === undefined || (q.flags & ~FLAGS_ALLOWED[type]) !== 0) expect(error, 'unknown command or flag').toBe(NBD_EINVAL);
        if (error !== 0) {
          counts.fuzzRejected++;
          expect([NBD_EINVAL, 28]).toContain(error);
          expect(snapshot(dir, store), 'a rejected request changes nothing').toEqual(before);
        } else if (type === 1) {
          expect(store.lastSeq).toBe(before.lastSeq + 1);
          expect(store.read('disk0', Number(q.offset), length).equals(payload!)).toBe(true);
        }
      }),
      { numRuns: 250, seed: 42, endOnFailure: true },
    );
    expect(server.connections()).toBeLessThanOrEqual(1);
  }, 60_000);

  it('garbage in the handshake and in transmission never crashes the server or changes anything', async () => {
    const { dir, store, server, port } = await setup({ handshakeTimeoutMs: 1000 });
    await store.write('disk0', 0, Buffer.alloc(4096, 7));
    await store.flush();
    const garbage = fc.record({
      phase: fc.constantFrom('connect', 'after-greeting', 'after-flags', 'transmission'),
      bytes: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 600 }),
        // Option-shaped garbage: IHAVEOPT, a random option and length, random data.
        fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 300 }), fc.uint8Array({ maxLength: 300 })).map(([opt, len, data]) => {
          const h = Buffer.alloc(16);
          Buffer.from('IHAVEOPT').copy(h);
          h.writeUInt32BE(opt, 8);
          h.writeUInt32BE(len, 12);
          return new Uint8Array(Buffer.concat([h, Buffer.from(data)]));
        }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(garbage, async ({ phase, bytes }) => {
        counts.fuzzGarbage++;
        const before = snapshot(dir, store);
        const c = await RawClient.connect(port);
        live.clients.add(c);
        if (phase === 'after-greeting') await c.greeting();
        if (phase === 'after-flags') await c.start();
        if (phase === 'transmission') {
          await c.start();
          await c.go('disk0');
        }
        c.write(Buffer.from(bytes));
        c.socket.end();
        // The server closes (end of input, bad data, or the handshake timeout).
        expect(await c.closedWithin(3000)).toBe(true);
        c.destroy();
        expect(snapshot(dir, store)).toEqual(before);
      }),
      { numRuns: 200, seed: 7, endOnFailure: true },
    );
    await until(() => server.connections() === 0);
    const ok = await open(port);
    expect((await ok.readAt(0, 4096)).data!.equals(Buffer.alloc(4096, 7))).toBe(true);
  }, 60_000);

  it('a read-only disk0@seq=N export never changes, whatever is sent to it and while disk0 keeps changing', async () => {
    const { dir, store, port } = await setup({ maxPayloadBytes: 64 * KiB }, 'count:4');
    const rand = prng(11);
    for (let i = 0; i < 30; i++) await store.write('disk0', Math.floor(rand() * (SIZE - 8192)), randomBytes(rand, 1 + Math.floor(rand() * 8192)));
    await store.settle();
    const N = 17; // inside an applied window: rolled back and replayed
    const expected = store.history.view('disk0', N).read(0, SIZE);
    const readAll = async (c: RawClient) => {
      const parts: Buffer[] = [];
      for (let at = 0; at < SIZE; at += 64 * KiB) {
        const r = await c.readAt(at, 64 * KiB, 5n);
        expect(r.error).toBe(0);
        parts.push(r.data!);
      }
      return Buffer.concat(parts);
    };
    let ro = await open(port, `disk0@seq=${N}`);
    let rw = await open(port);
    expect(sha256(await readAll(ro))).toBe(sha256(expected));
    const step = fc.record({
      target: fc.constantFrom('ro', 'ro', 'rw'),
      type: fc.constantFrom(0, 1, 1, 3, 4, 6),
      flags: fc.constantFrom(0, 0, 1, 2),
      block: fc.integer({ min: 0, max: SIZE / BLOCK - 1 }),
      blocks: fc.integer({ min: 1, max: 16 }),
      seed: fc.integer({ min: 1, max: 2 ** 31 }),
    });
    let h = 1000n;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 16 }), async (steps) => {
        counts.fuzzViewSeqs++;
        if (ro.socket.destroyed) ro = await open(port, `disk0@seq=${N}`);
        if (rw.socket.destroyed) rw = await open(port);
        for (const s of steps) {
          counts.viewReqs++;
          const c = s.target === 'ro' ? ro : rw;
          const length = Math.min(s.blocks * BLOCK, SIZE - s.block * BLOCK);
          const handle = h++;
          const isWrite = s.type === 1;
          c.sendRequest(s.type, { handle, flags: s.flags, offset: s.block * BLOCK, length, payload: isWrite ? randomBytes(prng(s.seed), length) : undefined });
          const r = (await replies(c, new Map([[handle, s.type === 0 ? length : 0]]), 1)).get(handle)!;
          const flagOk = (s.flags & ~FLAGS_ALLOWED[s.type]) === 0;
          if (s.target === 'ro' && [1, 4, 6].includes(s.type) && flagOk) expect(r.error, 'a write to the past gets EPERM').toBe(NBD_EPERM);
          if (s.target === 'ro' && s.type === 0 && flagOk) expect(r.data!.equals(expected.subarray(s.block * BLOCK, s.block * BLOCK + length))).toBe(true);
        }
        expect(sha256(await readAll(ro)), `disk0@seq=${N} after ${steps.length} requests`).toBe(sha256(expected));
      }),
      { numRuns: 60, seed: 99, endOnFailure: true },
    );
    // Once every window is applied, the past still reads the same (fresh connection, and from history).
    await store.settle();
    expect(store.appliedSeq).toBeGreaterThan(30);
    const fresh = await open(port, `disk0@seq=${N}`);
    expect(sha256(await readAll(fresh))).toBe(sha256(expected));
    expect(sha256(store.history.view('disk0', N).read(0, SIZE))).toBe(sha256(expected));
    void dir;
  }, 60_000);
});
