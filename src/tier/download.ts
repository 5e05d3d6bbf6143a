// Fetching tier objects to local files for a restore: every object is checked against the SHA-256
// its manifest lists, and a mismatch fails naming the object. Large objects are fetched as ranged
// GETs, RANGES_IN_FLIGHT at once; a restore fetches everything it needs through one bounded pool
// (the prefetch), so the service sees many requests in flight instead of one object at a time.
import { createHash } from 'node:crypto';
import { corrupt } from '../errors.js';
import type { StorageFile } from '../storage/storage.js';
import { forEachBounded } from './bounded.js';
import type { ShippedObject } from './manifest.js';
import type { ObjectStore } from './object-store.js';

/** Bytes per ranged GET. */
export const RANGE_BYTES = 8 * 2 ** 20;
/** GETs in flight for one restore. */
export const GETS_IN_FLIGHT = 8;

export interface FetchJob {
  object: ShippedObject;
  /** Where the object's bytes go, from `at` on. */
  file: StorageFile;
  at: number;
}

/** Fetches every job's object into its file, checking each object's SHA-256. */
export async function fetchAll(store: ObjectStore, jobs: readonly FetchJob[], onBytes?: (n: number) => void): Promise<void> {
  // Ranges of every object, in one pool; each object's hash is taken over its ranges in order once all are in.
  const ranges: { job: FetchJob; start: number; end: number; data?: Buffer }[] = [];
  const parts = new Map<FetchJob, typeof ranges>();
  for (const job of jobs) {
    const list: typeof ranges = [];
    for (let start = 0; start < job.object.bytes || (start === 0 && job.object.bytes === 0); start += RANGE_BYTES) {
      list.push({ job, start, end: Math.min(job.object.bytes, start + RANGE_BYTES) });
      if (job.object.bytes === 0) break;
    }
    parts.set(job, list);
    ranges.push(...list);
  }
  const hashes = new Map<FetchJob, { h: ReturnType<typeof createHash>; next: number }>();
  await forEachBounded(ranges, GETS_IN_FLIGHT, async (r) => {
    const whole = r.start === 0 && r.end === r.job.object.bytes;
    const data = await store.get(r.job.object.key, whole ? undefined : { start: r.start, end: r.end });
    const where = `${store.where}/${r.job.object.key}`;
    if (data === null) throw corrupt(where, r.start, 'the object the tier manifest lists is missing');
    if (data.byteLength !== r.end - r.start) throw corrupt(where, r.start, `got ${data.byteLength} bytes where the manifest says ${r.end - r.start}`);
    r.job.file.write(data, r.job.at + r.start);
    r.data = data;
    onBytes?.(data.byteLength);
    // Hash in order: ranges that arrived early wait (their data is kept until their turn).
    const list = parts.get(r.job)!;
    let st = hashes.get(r.job);
    if (!st) hashes.set(r.job, (st = { h: createHash('sha256'), next: 0 }));
    while (st.next < list.length && list[st.next].data) {
      st.h.update(list[st.next].data!);
      list[st.next].data = undefined;
      st.next++;
    }
    if (st.next === list.length && st.h.digest('hex') !== r.job.object.sha256) {
      throw corrupt(where, 0, 'SHA-256 mismatch: the object in the tier is damaged');
    }
  });
}
