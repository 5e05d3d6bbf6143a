// Base images: a volume as it was after write `seq`, read through a view of the store and shipped
// in chunks of BASE_CHUNK_BYTES. A restore from the tier alone starts from one (restore-source.ts).
// Chunks of zeros are not stored, and a chunk equal to the previous base's (same SHA-256) is not
// uploaded again: the new base lists the old object. So a base after a few writes costs a read of
// the volume and the upload of the chunks that changed.
import { assert } from '../errors.js';
import { forEachBounded } from './bounded.js';
import { uploadBuffers, UPLOAD_BUFFER_BYTES } from './buffer-pool.js';
import { BASE_CHUNK_BYTES, baseChunkKey, sha256, type BaseSet, type BaseVolume, type ShippedObject } from './manifest.js';
import type { ObjectStore } from './object-store.js';
import type { ShipSource } from './ship-source.js';

/** Chunks read and uploaded at once, each in one of the tier's upload buffers (buffer-pool.ts). */
const BASE_CHUNKS_IN_FLIGHT = 2;
assert(BASE_CHUNK_BYTES <= UPLOAD_BUFFER_BYTES, 'a base chunk fits an upload buffer');

function isZero(buf: Buffer): boolean {
  // Compare 64 KiB at a time against a zero block (Buffer.equals is a memcmp).
  const zero = ZERO.subarray(0, Math.min(ZERO.byteLength, buf.byteLength));
  for (let at = 0; at < buf.byteLength; at += zero.byteLength) {
    const part = buf.subarray(at, Math.min(buf.byteLength, at + zero.byteLength));
    if (!part.equals(zero.subarray(0, part.byteLength))) return false;
  }
  return true;
}
const ZERO = Buffer.alloc(64 * 1024);

/** Ships every volume as of write `seq` (a window end the store holds); resolves with the base and the bytes uploaded. */
export async function shipBase(store: ObjectStore, src: ShipSource, seq: number, time: number, previous: BaseSet | null): Promise<{ base: BaseSet; uploadedBytes: number }> {
  let uploadedBytes = 0;
  const volumes: BaseVolume[] = [];
  for (const v of src.config.volumes) {
    const prev = previous?.volumes.find((p) => p.name === v.name && p.size === v.size && p.chunkBytes === BASE_CHUNK_BYTES);
    const count = Math.ceil(v.size / BASE_CHUNK_BYTES);
    const chunks: (ShippedObject | null)[] = new Array(count).fill(null);
    const view = src.openView(v.name, seq);
    try {
      const indices = Array.from({ length: count }, (_, i) => i);
      await forEachBounded(indices, BASE_CHUNKS_IN_FLIGHT, async (n) => {
        const at = n * BASE_CHUNK_BYTES;
        const len = Math.min(BASE_CHUNK_BYTES, v.size - at);
        await new Promise((r) => setImmediate(r)); // a chunk read is synchronous: let the writer serve between them
        await uploadBuffers.use(async (whole) => {
          const buf = view.read(at, len, whole.subarray(0, len));
          if (isZero(buf)) return;
          const digest = sha256(buf);
          const old = prev?.chunks[n];
          if (old && old.sha256 === digest && old.bytes === len) {
            chunks[n] = old;
            return;
          }
          const key = baseChunkKey(v.name, seq, n);
          await store.put(key, buf);
          uploadedBytes += len;
          chunks[n] = { key, bytes: len, sha256: digest };
        });
      });
    } finally {
      view.close();
    }
    volumes.push({ name: v.name, size: v.size, chunkBytes: BASE_CHUNK_BYTES, chunks });
  }
  return { base: { seq, time, volumes }, uploadedBytes };
}
