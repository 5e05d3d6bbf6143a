// Creating a store: its directories, configuration, production volumes and replicas. A volume made
// from an existing file or device is copied into its replica as the baseline the history starts from;
// the same chunked copy rebuilds production from the replica after a crash (see recovery.ts).
import { validateConfig, writeConfig, type StoreConfig, type VolumeConfig } from '../config.js';
import { systemClock, type Clock } from '../clock.js';
import { RewindError } from '../errors.js';
import { withLifecycle } from '../lifecycle/policy.js';
import { nodeStorage } from '../storage/node-storage.js';
import { joinPath, type Storage, type StorageFile } from '../storage/storage.js';
import { productionPath, replicaPath } from '../volumes/volume-set.js';

export interface InitOptions {
  volumes: VolumeConfig[];
  blockSize?: number;
  window?: string;
  /** Retention spec (src/lifecycle/retention.ts); absent or `all`: keep everything. */
  retain?: string;
  /** History capacity: a size, `N%` of the file system, or `none` (the default). */
  capacity?: string;
  storage?: Storage;
  clock?: Clock;
  onProgress?: (volume: string, doneBytes: number, totalBytes: number) => void;
}

/** The directories of a store, made by initStore. */
export const STORE_DIRS = ['journal', 'increments', 'index', 'replica', 'volumes'] as const;
const COPY_CHUNK_BYTES = 8 * 2 ** 20;

/** Creates a store directory: configuration, empty history, production volumes and their replicas. */
export async function initStore(dir: string, opts: InitOptions): Promise<StoreConfig> {
  const storage = opts.storage ?? nodeStorage;
  if (storage.exists(joinPath(dir, 'rewind.json'))) throw new RewindError('STORE_EXISTS', `${dir} is already a rewind store`);
  const config: StoreConfig = withLifecycle({
    format: 'rewind-store',
    version: 1,
    blockSize: opts.blockSize ?? 4096,
    window: opts.window ?? 'time:1s',
    createdAt: new Date((opts.clock ?? systemClock).now()).toISOString(),
    volumes: opts.volumes.map((v) => ({ ...v })),
  }, { retain: opts.retain, capacity: opts.capacity });
  for (const v of config.volumes) {
    if (v.path !== undefined && !(v.size > 0)) v.size = storage.sizeOf(v.path);
  }
  // Checks everything before the first file is made.
  validateConfig(config);
  for (const d of STORE_DIRS) storage.mkdirp(joinPath(dir, d));
  for (const v of config.volumes) {
    const replica = storage.open(replicaPath(dir, v), 'create');
    replica.truncate(0);
    replica.truncate(v.size);
    if (v.path === undefined) {
      const prod = storage.open(productionPath(dir, v), 'create');
      prod.truncate(0);
      prod.truncate(v.size);
      await prod.sync();
      prod.close();
    } else {
      // An existing volume: its current contents are the baseline the history starts from (the
      // replica is new and empty, so zero chunks stay holes).
      const prod = storage.open(v.path, 'read');
      copyVolumeBytes(prod, replica, v.size, { skipZeros: true, onChunk: (done) => opts.onProgress?.(v.name, done, v.size) });
      prod.close();
    }
    await replica.sync();
    replica.close();
  }
  // The new files' directory entries, before the configuration makes the directory a store.
  await storage.syncDir(joinPath(dir, 'replica'));
  if (config.volumes.some((v) => v.path === undefined)) await storage.syncDir(joinPath(dir, 'volumes'));
  await writeConfig(storage, dir, config);
  return config;
}

/**
 * Copies the first `size` bytes of `from` to `to`, a chunk at a time; bytes past the end of a shorter
 * source are zeros. `skipZeros` leaves all-zero chunks unwritten (for a target known to be zero).
 */
export function copyVolumeBytes(
  from: Pick<StorageFile, 'read'>,
  to: StorageFile,
  size: number,
  opts: { skipZeros?: boolean; onChunk?: (doneBytes: number) => void } = {},
): void {
  const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, size));
  const zero = opts.skipZeros ? Buffer.alloc(buf.byteLength) : null;
  for (let at = 0; at < size; at += buf.byteLength) {
    const len = Math.min(buf.byteLength, size - at);
    const n = from.read(buf, at, 0, len);
    if (n < len) buf.fill(0, n, len);
    if (!zero || !buf.subarray(0, len).equals(zero.subarray(0, len))) to.write(buf.subarray(0, len), at);
    opts.onChunk?.(at + len);
  }
}
