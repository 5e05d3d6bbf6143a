// An S3 service that takes a request and never answers (radosgw with a full OSD does this: it blocks
// every write) must fail the request after the idle timeout, not hold the uploader forever. And the
// upload buffers a failed upload borrowed must come back to the pool, or the next uploads wait forever.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uploadBuffers, UPLOAD_BUFFER_BYTES } from '../../src/tier/buffer-pool.js';
import { S3ObjectStore } from '../../src/tier/s3-store.js';

describe('a stalled S3 service', () => {
  let server: net.Server;
  let endpoint: string;
  let dir: string;
  const sockets = new Set<net.Socket>();
  let requests = 0;

  beforeAll(async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'stalled');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'stalled');
    // Reads every byte sent, answers nothing.
    server = net.createServer((s) => {
      requests++;
      sockets.add(s);
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'rewind-stalled-'));
  });

  afterAll(async () => {
    vi.unstubAllEnvs();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const stalled = () => new S3ObjectStore({ bucket: 'b', prefix: 'p' }, { endpoint, idleTimeoutMs: 300, retry: { attempts: 2, baseMs: 1, capMs: 1, random: () => 0 } });

  it('fails a put, a get and file uploads (whole and in parts) after the idle timeout, each after its retries', async () => {
    const s3 = stalled();
    try {
      const small = join(dir, 'small');
      const large = join(dir, 'large');
      writeFileSync(small, Buffer.alloc(100_000, 1));
      writeFileSync(large, Buffer.alloc(UPLOAD_BUFFER_BYTES * 2 + 1, 2));
      const before = requests;
      await expect(s3.put('k', Buffer.from('x'))).rejects.toMatchObject({ code: 'TIER' });
      await expect(s3.get('k')).rejects.toMatchObject({ code: 'TIER' });
      await expect(s3.putFile('small', small, 100_000)).rejects.toMatchObject({ code: 'TIER' });
      await expect(s3.putFile('large', large, UPLOAD_BUFFER_BYTES * 2 + 1)).rejects.toMatchObject({ code: 'TIER' });
      // Two attempts each (a request per connection: the stalled ones are closed by the timeout).
      expect(requests - before).toBeGreaterThanOrEqual(8);
    } finally {
      s3.close();
    }
  });

  it('gives every upload buffer back after failed uploads', async () => {
    const s3 = stalled();
    const file = join(dir, 'file');
    writeFileSync(file, Buffer.alloc(UPLOAD_BUFFER_BYTES + 10, 3));
    try {
      await Promise.all([1, 2, 3].map((i) => expect(s3.putFile(`f${i}`, file, UPLOAD_BUFFER_BYTES + 10)).rejects.toMatchObject({ code: 'TIER' })));
    } finally {
      s3.close();
    }
    // Every buffer of the pool can be borrowed at once again (a lost one would leave this waiting).
    const all = await Promise.all(Array.from({ length: uploadBuffers.count }, () => uploadBuffers.acquire()));
    for (const b of all) uploadBuffers.release(b);
  });
});
