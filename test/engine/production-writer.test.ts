// The production writer thread: queued writes land in order (overlaps resolved as the sequence says),
// the ring wraps and applies backpressure, a failed write and everything queued after it come back
// in order with the system error, and the store reads production exactly while writes are queued.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProductionWriter } from '../../src/volumes/production-writer.js';
import { initStore, Store } from '../../src/index.js';
import { prng, randomBytes } from '../../src/prng.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-prodw-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('production writer', () => {
  it('writes queued writes in order through a small ring that wraps and fills', async () => {
    const path = join(dir, 'order.img');
    const size = 256 * 1024;
    writeFileSync(path, Buffer.alloc(size));
    const model = Buffer.alloc(size);
    const w = new ProductionWriter<number>({ ringBytes: 64 * 1024, entries: 16, writeBytesMax: 1 << 20 });
    const fd = openSync(path, 'r+');
    try {
      const rand = prng(5);
      let queued = 0;
      for (let i = 0; i < 2000; i++) {
        const len = 1 + Math.floor(rand() * (i % 50 === 0 ? 24 * 1024 : 3000));
        const offset = Math.floor(rand() * (size - len));
        const data = randomBytes(rand, len);
        // Overlapping writes: the later one must win, as the model says.
        data.copy(model, offset);
        if (w.enqueue(fd, offset, data, i)) queued++;
        else {
          // Only writes over a quarter of the ring are refused; the caller drains and writes them itself.
          expect(len).toBeGreaterThan(w.writeBytesMax);
          w.drain();
          expect(w.hasFailed()).toBe(false);
          writeSync(fd, data, 0, len, offset);
        }
      }
      w.drain();
      expect(w.pending).toBe(0);
      expect(queued).toBeGreaterThan(1900);
      expect(readFileSync(path).equals(model)).toBe(true);
    } finally {
      closeSync(fd);
      await w.close();
    }
  });

  it('keeps going when its entry counters wrap past 2^31, and drain(upTo) waits for the writes queued until then', async () => {
    const path = join(dir, 'wrap.img');
    const size = 64 * 1024;
    writeFileSync(path, Buffer.alloc(size));
    const model = Buffer.alloc(size);
    // The counters start 40 entries short of the int32 wrap; a 16-entry ring wraps many times past it.
    const w = new ProductionWriter<number>({ ringBytes: 16 * 1024, entries: 16, writeBytesMax: 4096, firstCount: 2 ** 31 - 40 });
    const fd = openSync(path, 'r+');
    try {
      const rand = prng(11);
      let mark = 0;
      for (let i = 0; i < 500; i++) {
        const len = 1 + Math.floor(rand() * 4000);
        const offset = Math.floor(rand() * (size - len));
        const data = randomBytes(rand, len);
        data.copy(model, offset);
        expect(w.enqueue(fd, offset, data, i)).toBe(true);
        if (i === 100) mark = w.queued;
        if (i === 101) {
          w.drain(mark);
          // Everything up to the mark is written: at most the one write queued after it is left.
          expect(w.pending).toBeLessThanOrEqual(1);
        }
      }
      w.drain();
      expect(w.pending).toBe(0);
      expect(w.hasFailed()).toBe(false);
      expect(readFileSync(path).equals(model)).toBe(true);
    } finally {
      closeSync(fd);
      await w.close();
    }
  });

  it('hands back a failed write and every one queued after it, in order, with the error', async () => {
    const good = join(dir, 'good.img');
    writeFileSync(good, Buffer.alloc(8192));
    const ro = openSync(good, 'r'); // writes to it fail with EBADF
    const rw = openSync(good, 'r+');
    const w = new ProductionWriter<string>({ ringBytes: 64 * 1024, entries: 64, writeBytesMax: 16 * 1024 });
    try {
      expect(w.enqueue(rw, 0, Buffer.from('first'), 'a')).toBe(true);
      expect(w.enqueue(ro, 100, Buffer.from('fails'), 'b')).toBe(true);
      // Queued after the failure (or refused once it is seen): never written before 'b' is.
      const c = w.enqueue(rw, 200, Buffer.from('after'), 'c');
      w.drain();
      expect(w.hasFailed()).toBe(true);
      expect(w.enqueue(rw, 300, Buffer.from('refused'), 'd')).toBe(false);
      const failed = w.takeFailed()!;
      expect(failed.error.code).toBe('EBADF');
      expect(failed.tags).toEqual(c ? ['b', 'c'] : ['b']);
      expect(w.hasFailed()).toBe(false);
      const content = readFileSync(good);
      expect(content.subarray(0, 5).toString()).toBe('first');
      expect(content.subarray(200, 205).equals(Buffer.alloc(5))).toBe(true);
      // The thread goes on with new writes.
      expect(w.enqueue(rw, 400, Buffer.from('later'), 'e')).toBe(true);
      w.drain();
      expect(readFileSync(good).subarray(400, 405).toString()).toBe('later');
      expect(w.takeFailed()).toBeNull();
    } finally {
      closeSync(ro);
      closeSync(rw);
      await w.close();
    }
  });

  it('reports ENOSPC from a full device', async () => {
    const fd = openSync('/dev/full', 'w');
    const w = new ProductionWriter<number>({ ringBytes: 64 * 1024, entries: 16, writeBytesMax: 1 << 20 });
    try {
      expect(w.enqueue(fd, 0, Buffer.alloc(512, 1), 1)).toBe(true);
      w.drain();
      expect(w.takeFailed()).toMatchObject({ tags: [1], error: { code: 'ENOSPC' } });
    } finally {
      closeSync(fd);
      await w.close();
    }
  });

  it('if the thread dies, every write it left is handed back and later writes are refused', async () => {
    const path = join(dir, 'dead.img');
    writeFileSync(path, Buffer.alloc(2000 * 512));
    const fd = openSync(path, 'r+');
    const w = new ProductionWriter<number>({ ringBytes: 1 << 20, entries: 4096, writeBytesMax: 16 * 1024 });
    try {
      for (let i = 0; i < 2000; i++) expect(w.enqueue(fd, i * 512, Buffer.alloc(512, 1 + (i % 255)), i)).toBe(true);
      // The thread stops part way; its error event is what the writer sees of a crash (delivered here
      // after the thread is gone, as Node delivers it; the listener is taken first because an
      // exited worker drops its listeners).
      const worker = (w as unknown as { worker: { listeners(e: string): ((err: Error) => void)[] } }).worker;
      const onError = worker.listeners('error')[0];
      await w.terminate();
      onError(new Error('boom'));
      expect(w.hasFailed()).toBe(true);
      const failed = w.takeFailed();
      const handedBack = new Set(failed?.tags ?? []);
      expect(failed === null || /boom/.test(failed.error.message)).toBe(true);
      // Each write is either in the file or handed back, and the handed-back ones are the last, in order.
      const content = readFileSync(path);
      for (let i = 0; i < 2000; i++) {
        if (!handedBack.has(i)) expect(content[i * 512], `write ${i} is in the file`).toBe(1 + (i % 255));
      }
      const tags = failed?.tags ?? [];
      expect(tags).toEqual(tags.length ? Array.from({ length: tags.length }, (_, k) => 2000 - tags.length + k) : []);
      expect(w.enqueue(fd, 0, Buffer.alloc(512), -1)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });

  it('close waits for every queued write', async () => {
    const path = join(dir, 'close.img');
    writeFileSync(path, Buffer.alloc(1 << 20));
    const fd = openSync(path, 'r+');
    const w = new ProductionWriter<number>({ ringBytes: 1 << 20, entries: 1024, writeBytesMax: 16 * 1024 });
    const model = Buffer.alloc(1 << 20);
    const rand = prng(9);
    for (let i = 0; i < 500; i++) {
      const data = randomBytes(rand, 4096);
      const offset = Math.floor(rand() * 256) * 4096;
      data.copy(model, offset);
      expect(w.enqueue(fd, offset, data, i)).toBe(true);
    }
    await w.close();
    closeSync(fd);
    expect(readFileSync(path).equals(model)).toBe(true);
  });
});

describe('store reads production while writes are queued', () => {
  it('every read sees every write before it, overlapping and unaligned', async () => {
    const storeDir = join(dir, 'store');
    const size = 4 * 1024 * 1024;
    await initStore(storeDir, { volumes: [{ name: 'v', size }], window: 'count:200' });
    const store = await Store.open(storeDir, { threads: 1 });
    const model = Buffer.alloc(size);
    const rand = prng(21);
    try {
      for (let i = 0; i < 3000; i++) {
        const len = 1 + Math.floor(rand() * 20_000);
        const offset = Math.floor(rand() * (size - len));
        const data = randomBytes(rand, len);
        data.copy(model, offset);
        await store.write('v', offset, data);
        if (i % 7 === 0) {
          const rlen = 1 + Math.floor(rand() * 50_000);
          const roff = Math.floor(rand() * (size - rlen));
          expect(store.read('v', roff, rlen).equals(model.subarray(roff, roff + rlen))).toBe(true);
        }
      }
      expect(store.read('v', 0, size).equals(model)).toBe(true);
    } finally {
      await store.close();
    }
    expect(readFileSync(join(storeDir, 'volumes', 'v')).equals(model)).toBe(true);
  });
});
