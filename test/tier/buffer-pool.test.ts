import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/tier/buffer-pool.js';

describe('BufferPool', () => {
  it('lends at most count buffers, reuses them, and serves waiters in order', async () => {
    const pool = new BufferPool(16, 2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a).not.toBe(b);
    const order: string[] = [];
    const c = pool.acquire().then((buf) => (order.push('c'), buf));
    const d = pool.acquire().then((buf) => (order.push('d'), buf));
    await Promise.resolve();
    expect(order).toEqual([]);
    pool.release(b);
    expect(await c).toBe(b);
    pool.release(a);
    expect(await d).toBe(a);
    expect(order).toEqual(['c', 'd']);
  });

  it('use() releases on success and discards on failure, making a new buffer in its place', async () => {
    const pool = new BufferPool(16, 1);
    let first: Buffer | null = null;
    await pool.use(async (buf) => void (first = buf));
    await pool.use(async (buf) => expect(buf).toBe(first));
    await expect(pool.use(async () => { throw new Error('request failed'); })).rejects.toThrow('request failed');
    const next = await pool.acquire();
    expect(next).not.toBe(first);
    expect(next.byteLength).toBe(16);
  });

  it('hands a waiter a new buffer when a lent one is discarded', async () => {
    const pool = new BufferPool(8, 1);
    const lent = await pool.acquire();
    const waiter = pool.acquire();
    pool.discard();
    const got = await waiter;
    expect(got).not.toBe(lent);
    expect(() => pool.release(Buffer.alloc(4))).toThrow(/one of the pool/);
  });
});
