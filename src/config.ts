// rewind.json: the store's volumes, block size, window policy, retention and capacity. Written by
// `init`; retention and capacity may be changed later (`rewind config`).
import { badArgument, corrupt, RewindError } from './errors.js';
import { LIMITS } from './limits.js';
import { readWholeFile, writeFileAtomic, type Storage, joinPath } from './storage/storage.js';
import { parseCapacity } from './lifecycle/capacity.js';
import { parseRetention } from './lifecycle/retention.js';
import { parseWindowSpec } from './window/policy.js';

export const CONFIG_FILE = 'rewind.json';
export const CONFIG_VERSION = 1;

export interface VolumeConfig {
  name: string;
  size: number;
  /** An existing file or block device used as the production volume; absent: volumes/<name> in the store. */
  path?: string;
}

export interface StoreConfig {
  format: 'rewind-store';
  version: number;
  blockSize: number;
  window: string;
  createdAt: string;
  volumes: VolumeConfig[];
  /** Retention spec (src/lifecycle/retention.ts); absent: keep everything. Changeable while serving. */
  retain?: string;
  /** History capacity, a size in bytes or "N%" of the file system (src/lifecycle/capacity.ts); absent: none. */
  capacity?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function validateConfig(c: StoreConfig): StoreConfig {
  const bs = c.blockSize;
  if (!Number.isInteger(bs) || bs < LIMITS.blockSizeMin || bs > LIMITS.blockSizeMax || (bs & (bs - 1)) !== 0) {
    throw badArgument(`block size ${bs} must be a power of two from ${LIMITS.blockSizeMin} to ${LIMITS.blockSizeMax}`);
  }
  if (!Array.isArray(c.volumes) || c.volumes.length === 0) throw badArgument('a store needs at least one volume');
  if (c.volumes.length > LIMITS.volumesMax) throw badArgument(`${c.volumes.length} volumes exceed the limit ${LIMITS.volumesMax}`);
  const seen = new Set<string>();
  for (const v of c.volumes) {
    if (typeof v.name !== 'string' || !NAME.test(v.name) || v.name.length > LIMITS.volumeNameBytesMax || v.name.includes('@')) {
      throw badArgument(`volume name "${v.name}" must be 1-${LIMITS.volumeNameBytesMax} letters, digits, '.', '_' or '-'`);
    }
    if (seen.has(v.name)) throw badArgument(`volume "${v.name}" is named twice`);
    seen.add(v.name);
    if (!Number.isSafeInteger(v.size) || v.size <= 0 || v.size > LIMITS.volumeBytesMax) {
      throw badArgument(`volume "${v.name}": size ${v.size} must be between 1 byte and ${LIMITS.volumeBytesMax}`);
    }
    if (v.size % bs !== 0) throw badArgument(`volume "${v.name}": size ${v.size} is not a multiple of the block size ${bs}`);
  }
  parseWindowSpec(c.window);
  if (c.retain !== undefined) parseRetention(c.retain);
  if (c.capacity !== undefined) parseCapacity(c.capacity);
  return c;
}

export function readConfig(storage: Storage, dir: string): StoreConfig {
  const path = joinPath(dir, CONFIG_FILE);
  if (!storage.exists(path)) {
    throw new RewindError('STORE_NOT_FOUND', `${dir} is not a rewind store (no ${CONFIG_FILE}); create one with \`rewind init\``);
  }
  let parsed: StoreConfig;
  try {
    parsed = JSON.parse(readWholeFile(storage, path).toString('utf8'));
  } catch (err) {
    throw corrupt(path, 0, `not valid JSON (${(err as Error).message})`);
  }
  if (parsed?.format !== 'rewind-store') throw corrupt(path, 0, 'not a rewind store configuration');
  if (parsed.version !== CONFIG_VERSION) throw corrupt(path, 0, `configuration version ${parsed.version} is not supported (expected ${CONFIG_VERSION})`);
  try {
    return validateConfig(parsed);
  } catch (err) {
    throw corrupt(path, 0, (err as Error).message);
  }
}

let tmpCount = 0;

/**
 * Replaces rewind.json atomically. `rewind config` may run while another does (and while the writer
 * reads the file): each writes a temp file of its own, so the last rename wins with a whole file.
 */
export async function writeConfig(storage: Storage, dir: string, config: StoreConfig): Promise<void> {
  validateConfig(config);
  const path = joinPath(dir, CONFIG_FILE);
  await writeFileAtomic(storage, path, Buffer.from(JSON.stringify(config, null, 2) + '\n'), `${path}.${process.pid}-${++tmpCount}.tmp`);
}
