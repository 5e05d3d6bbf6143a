// Disk full and I/O errors through NBD (GitHub issue 5, item 3). The NBD server runs in this
// process over a Store whose storage fails journal writes on demand (ENOSPC, EIO, short writes):
// the NBD WRITE gets the NBD ENOSPC / EIO error, the server stays up (other connections work),
// nothing acknowledged is lost, and once the fault clears writing resumes and reads back, also
// after the store is closed and opened again.

import path from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, expect, it } from 'vitest';
import { initStore, Store } from '../../src/index.js';
import { StoreExports } from '../../src/serve/exports.js';
import { startNbdServer, type NbdServer } from '../../src/nbd/server.js';
import { RawClient } from '../nbd/raw-client.js';
import { requireTool } from '../helpers/tools.js';
import { prng } from '../helpers/model.js';
import {
  BLOCK, FaultyStorage, KiB, MiB, NBD_EIO, NBD_ENOSPC, killChildren, nbdshEnv, patternWrite, removeTempDirs, rewind, tempDir, uri,
} from './helpers.js';

const SIZE = 8 * MiB;
const CMD_WRITE = 1;
const CMD_FLUSH = 3;
const CMD_WRITE_ZEROES = 6;

const open: { server?: NbdServer; store?: Store; clients: RawClient[] } = { clients: [] };
const counts = { faults: 0, rejectedWrites: 0, acceptedWrites: 0, checks: 0 };

afterEach(async () => {
  for (const c of open.clients.splice(0)) c.destroy();
  await open.server?.close({ graceful: false });
  await open.store?.close().catch(() => undefined);
  open.server = undefined;
  open.store = undefined;
  killChildren();
});
afterAll(() => {
  removeTempDirs();
  console.log(`nbd-enospc: ${counts.faults} faults injected, ${counts.rejectedWrites} NBD writes rejected with ENOSPC/EIO, ${counts.acceptedWrites} accepted and read back, ${counts.checks} read-back checks`);
});

async function setup(opts: { segmentBytesMax?: number } = {}) {
  const dir = path.join(tempDir(), 'store');
  await initStore(dir, { volumes: [{ name: 'disk0', size: SIZE }], window: 'count:16' });
  const storage = new FaultyStorage();
  const store = await Store.open(dir, { storage, threads: 1, limits: opts.segmentBytesMax ? { segmentBytesMax: opts.segmentBytesMax } : undefined });
  const logs: string[] = [];
  const server = await startNbdServer({ provider: new StoreExports(store), listen: { host: '127.0.0.1', port: 0 }, log: (m) => logs.push(m) });
  open.server = server;
  open.store = store;
  const port = (server.address() as { port: number }).port;
  const model = Buffer.alloc(SIZE);
  const connect = async () => {
    const { client } = await RawClient.open(port, 'disk0');
    open.clients.push(client);
    return client;
  };
  return { dir, storage, store, server, port, model, logs, connect };
}

let nextId = 1;
/** A pattern write of `blocks` 4 KiB blocks at `block`. */
function pw(block: number, blocks: number): { offset: number; data: Buffer } {
  return { offset: block * BLOCK, data: patternWrite(nextId++, block, blocks) };
}

/** Sends writes pipelined on one connection; returns each reply's NBD error, in request order. */
async function pipelined(c: RawClient, writes: { offset: number; data: Buffer }[]): Promise<number[]> {
  writes.forEach((w, i) => c.sendRequest(CMD_WRITE, { handle: BigInt(i + 1), offset: w.offset, payload: w.data }));
  const errors: number[] = new Array(writes.length);
  for (let i = 0; i < writes.length; i++) {
    const r = await c.simpleReply();
    errors[Number(r.handle) - 1] = r.error;
  }
  return errors;
}

async function flush(c: RawClient): Promise<number> {
  c.sendRequest(CMD_FLUSH, { handle: 99n });
  return (await c.simpleReply()).error;
}

async function expectReadsBack(c: RawClient, model: Buffer): Promise<void> {
  for (let at = 0; at < SIZE; at += 2 * MiB) {
    const r = await c.readAt(at, 2 * MiB);
    expect(r.error).toBe(0);
    expect(r.data!.equals(model.subarray(at, at + 2 * MiB)), `bytes at ${at}`).toBe(true);
  }
  counts.checks++;
}

function randomWrites(rand: () => number, n: number) {
  return Array.from({ length: n }, () => (rand() < 0.2 ? pw(Math.floor(rand() * (SIZE / BLOCK / 16)) * 16, 16) : pw(Math.floor(rand() * (SIZE / BLOCK)), 1)));
}


/** Closes every client, the server and the store; then `rewind verify` passes and production equals the model. */
async function closeAndVerify(dir: string, model: Buffer): Promise<void> {
  for (const c of open.clients.splice(0)) c.destroy();
  await open.server!.close({ graceful: false });
  open.server = undefined;
  await open.store!.close();
  open.store = undefined;
  const v = await rewind(['verify', dir], 30_000);
  expect(v.code, v.stdout + v.stderr).toBe(0);
  expect(readFileSync(path.join(dir, 'volumes', 'disk0')).equals(model)).toBe(true);
}

it('ENOSPC, then EIO, on journal writes: the NBD write gets that error, the server stays up, nothing acknowledged is lost, writing resumes', async () => {
  const { dir, storage, store, server, model, connect } = await setup();
  const rand = prng(5);
  const c1 = await connect();
  // Acknowledged and flushed before anything fails.
  const before = randomWrites(rand, 40);
  expect(await pipelined(c1, before)).toEqual(before.map(() => 0));
  for (const w of before) w.data.copy(model, w.offset);
  counts.acceptedWrites += before.length;
  expect(await flush(c1)).toBe(0);
  const flushedSeq = store.lastSeq;
  expect(flushedSeq).toBe(40);

  for (const code of ['ENOSPC', 'EIO'] as const) {
    const nbdError = code === 'ENOSPC' ? NBD_ENOSPC : NBD_EIO;
    for (const partial of [false, true]) {
      storage.fault = { path: /\/journal\//, code, partial };
      const injected = storage.injected;
      const failing = randomWrites(rand, 8);
      expect(await pipelined(c1, failing), `${code}${partial ? ' (short write)' : ''}`).toEqual(failing.map(() => nbdError));
      // WRITE_ZEROES is journaled too, so it fails the same way.
      c1.sendRequest(CMD_WRITE_ZEROES, { handle: 7n, offset: 0, length: 64 * KiB });
      expect((await c1.simpleReply()).error).toBe(nbdError);
      counts.rejectedWrites += failing.length + 1;
      // The writes of one socket read share one journal write (one fault fails them all, store/capture.ts);
      // the write-zeroes has its own: between 2 faults (all 8 in one read) and 9 (one read each).
      expect(storage.injected - injected).toBeGreaterThanOrEqual(2);
      expect(storage.injected - injected).toBeLessThanOrEqual(9);
      expect(store.lastSeq, 'a failed journal append consumes no sequence number').toBe(flushedSeq + counts.acceptedWrites - 40);
      // The server stays up: another connection reads everything acknowledged; so does this one.
      const c2 = await connect();
      await expectReadsBack(c2, model);
      expect(await c2.disconnect()).toBe(true);
      const r = await c1.readAt(0, 4096);
      expect(r.error).toBe(0);
      expect(r.data!.equals(model.subarray(0, 4096))).toBe(true);
      // Cleared: writing resumes on the same connection.
      storage.fault = null;
      const after = randomWrites(rand, 12);
      expect(await pipelined(c1, after)).toEqual(after.map(() => 0));
      for (const w of after) w.data.copy(model, w.offset);
      counts.acceptedWrites += after.length;
      expect(await flush(c1)).toBe(0);
      await expectReadsBack(c1, model);
    }
  }

  // A fault that comes and goes in the middle of a pipelined burst fails exactly the writes it hits.
  // The writes of one socket read share one journal write (store/capture.ts), so it hits whole
  // batches: the writes before the faulty journal writes succeed, then a run of writes fails with
  // ENOSPC, then the rest succeed (how the burst splits into socket reads is up to TCP).
  const injectedBefore = storage.injected;
  storage.fault = { path: /\/journal\//, code: 'ENOSPC', skip: 2, times: 2 };
  const burst = randomWrites(rand, 16);
  const errors = await pipelined(c1, burst);
  const failedFrom = errors.indexOf(NBD_ENOSPC);
  const failedCount = errors.filter((e) => e === NBD_ENOSPC).length;
  expect(failedFrom === -1 ? burst.length : failedFrom, 'the first two journal writes pass').toBeGreaterThanOrEqual(2);
  expect(errors).toEqual(burst.map((_, i) => (i >= failedFrom && i < failedFrom + failedCount ? NBD_ENOSPC : 0)));
  expect(failedCount > 0, 'a write failed exactly when a journal write did').toBe(storage.injected > injectedBefore);
  storage.fault = null;
  burst.forEach((w, i) => errors[i] === 0 && w.data.copy(model, w.offset));
  counts.acceptedWrites += burst.length - failedCount;
  counts.rejectedWrites += failedCount;
  expect(await flush(c1)).toBe(0);
  await expectReadsBack(c1, model);
  const lastSeq = store.lastSeq;
  expect(lastSeq).toBe(counts.acceptedWrites);
  counts.faults += storage.injected;

  // Closed and opened again (no faults): the same bytes, from production, the replica and history.
  await closeAndVerify(dir, model);
  expect(readFileSync(path.join(dir, 'replica', 'disk0')).equals(model)).toBe(true);
  const again = await Store.open(dir, { threads: 1 });
  open.store = again;
  expect(again.lastSeq).toBe(lastSeq);
  expect(again.history.view('disk0', flushedSeq).read(0, SIZE).equals(readFileSync(path.join(dir, 'volumes', 'disk0'))), 'the view at the last flush before the faults differs from now, as it should').toBe(false);
  expect(again.history.view('disk0', lastSeq).read(0, SIZE).equals(model)).toBe(true);
  await again.close();
  open.store = undefined;
}, 60_000);

it('ENOSPC when the journal starts a new segment: the write fails, and writing resumes once space is back', async () => {
  // 256 KiB segments: the fourth 64 KiB write starts a new segment; its header write fails.
  const { dir, storage, store, model, connect } = await setup({ segmentBytesMax: 256 * KiB });
  const c1 = await connect();
  const first = [pw(0, 16), pw(16, 16), pw(32, 16)];
  expect(await pipelined(c1, first)).toEqual([0, 0, 0]);
  for (const w of first) w.data.copy(model, w.offset);
  expect(await flush(c1)).toBe(0);
  storage.fault = { path: /\/journal\//, code: 'ENOSPC', times: 1 };
  const rejected = pw(48, 16);
  expect(await pipelined(c1, [rejected])).toEqual([NBD_ENOSPC]);
  counts.rejectedWrites++;
  counts.faults += storage.injected;
  expect(storage.fault).toBe(null);
  expect(store.lastSeq).toBe(3);
  // Space is back.
  const later = [pw(48, 16), pw(64, 16), pw(80, 16), pw(96, 16), pw(112, 16)];
  const errors = await pipelined(c1, later);
  expect(errors, 'writes after the disk recovers from a failed segment start').toEqual(later.map(() => 0));
  for (const w of later) w.data.copy(model, w.offset);
  counts.acceptedWrites += 8;
  expect(await flush(c1)).toBe(0);
  await expectReadsBack(c1, model);
  const c2 = await connect();
  await expectReadsBack(c2, model);
  expect(store.lastSeq).toBe(8);
  await closeAndVerify(dir, model);
}, 30_000);

it('clients see the error by name: nbdsh gets ENOSPC, then EIO, from pwrite; then the write succeeds', async (ctx) => {
  if (!requireTool('nbdsh')) ctx.skip();
  const { storage, port, model, connect } = await setup();
  const script = [
    `h.connect_uri(${JSON.stringify(uri(port, 'disk0'))})`,
    'for step in range(3):',
    "    print('READY', step, flush=True)",
    '    sys.stdin.readline()',
    '    try:',
    "        h.pwrite(b'\\x5a' * 4096, 8192)",
    "        print('WROTE', step, flush=True)",
    '    except nbd.Error as e:',
    "        print('ERROR', step, e.errno, e.string, flush=True)",
    'h.flush()',
    "print('DONE', flush=True)",
  ].join('\n');
  const { spawn } = await import('node:child_process');
  const child = spawn('nbdsh', ['-c', `import sys\n${script}`], { stdio: ['pipe', 'pipe', 'pipe'], env: nbdshEnv() });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const waitFor = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = re.exec(out);
        if (m) {
          child.stdout.off('data', onData);
          resolve(m[0]);
        }
      };
      const onData = (d: Buffer) => ((out += d.toString()), check());
      child.stdout.on('data', onData);
      child.once('close', () => reject(new Error(`nbdsh exited; stdout: ${out} stderr: ${err}`)));
      check();
    });
  try {
    const steps: [string | null, RegExp][] = [
      ['ENOSPC', /^ERROR 0 ENOSPC .*No space left on device.*$/m],
      ['EIO', /^ERROR 1 EIO .*Input\/output error.*$/m],
      [null, /^WROTE 2$/m],
    ];
    for (const [i, [code, re]] of steps.entries()) {
      await waitFor(new RegExp(`^READY ${i}$`, 'm'));
      storage.fault = code ? { path: /\/journal\//, code: code as 'ENOSPC' | 'EIO' } : null;
      child.stdin.write('\n');
      await waitFor(re);
      if (code) counts.rejectedWrites++;
    }
    storage.fault = null;
    await waitFor(/^DONE$/m);
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
  counts.faults += storage.injected;
  counts.acceptedWrites++;
  Buffer.alloc(4096, 0x5a).copy(model, 8192);
  const c = await connect();
  await expectReadsBack(c, model);
}, 30_000);

