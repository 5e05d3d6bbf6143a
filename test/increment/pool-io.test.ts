// The kernel pool's file I/O: runs of a plain file read into, and written from, the shared memory by
// a worker, as the builder (old blocks) and the replica apply use them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelPool } from '../../src/increment/pool.js';
import { prng, randomBytes } from '../../src/prng.js';

describe('kernel pool file I/O', () => {
  let pool: KernelPool;
  let dir: string;
  beforeAll(() => {
    pool = new KernelPool({ threads: 2, blockSize: 4096, chunkBytes: 64 * 1024, windowBytesMax: 1 << 20, windowWritesMax: 256 });
    dir = mkdtempSync(join(tmpdir(), 'rewind-pool-io-'));
  });
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads runs into shared memory, zeros past the end of the file', async () => {
    const path = join(dir, 'read.img');
    const content = randomBytes(prng(7), 10_000);
    writeFileSync(path, content);
    const slot = pool.slots[0];
    const mem = pool.bytes();
    mem.fill(0xee, slot.oldBlocks, slot.oldBlocks + 16384);
    const fd = openSync(path, 'r');
    try {
      // Whole run inside, one straddling the end (zero tail), one wholly past the end.
      await pool.readRuns(fd, [4096, slot.oldBlocks, 4096, 8192, slot.oldBlocks + 4096, 4096, 12288, slot.oldBlocks + 8192, 4096]);
    } finally {
      closeSync(fd);
    }
    expect(Buffer.from(mem.subarray(slot.oldBlocks, slot.oldBlocks + 4096))).toEqual(content.subarray(4096, 8192));
    const straddle = Buffer.alloc(4096);
    content.copy(straddle, 0, 8192);
    expect(Buffer.from(mem.subarray(slot.oldBlocks + 4096, slot.oldBlocks + 8192))).toEqual(straddle);
    expect(mem.subarray(slot.oldBlocks + 8192, slot.oldBlocks + 12288).every((b) => b === 0)).toBe(true);
    // Nothing past the runs was touched.
    expect(mem[slot.oldBlocks + 12288]).toBe(0xee);
  });

  it('writes runs from shared memory at their positions', async () => {
    const path = join(dir, 'write.img');
    writeFileSync(path, Buffer.alloc(5 * 4096, 1));
    const slot = pool.slots[1];
    const mem = pool.bytes();
    const a = randomBytes(prng(8), 4096);
    const b = randomBytes(prng(9), 8192);
    mem.set(a, slot.newBlocks);
    mem.set(b, slot.newBlocks + 4096);
    const fd = openSync(path, 'r+');
    try {
      await pool.writeRuns(fd, [0, slot.newBlocks, 4096, 3 * 4096, slot.newBlocks + 4096, 8192]);
    } finally {
      closeSync(fd);
    }
    const expected = Buffer.concat([a, Buffer.alloc(2 * 4096, 1), b]);
    expect(readFileSync(path)).toEqual(expected);
  });

  it('rejects with the system error and its code', async () => {
    const path = join(dir, 'ro.img');
    writeFileSync(path, Buffer.alloc(4096));
    const fd = openSync(path, 'r');
    try {
      await expect(pool.writeRuns(fd, [0, pool.slots[0].newBlocks, 4096])).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a run outside the shared memory', async () => {
    await expect(pool.readRuns(0, [0, pool.bytes().byteLength - 10, 4096])).rejects.toThrow(/shared memory/);
  });
});
