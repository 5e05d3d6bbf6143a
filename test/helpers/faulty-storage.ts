// The real file system behind the storage interface, with writes to chosen files failing on demand
// (ENOSPC, EIO, or a short write first), for tests of how rewind meets a full or failing disk.
import { nodeStorage } from '../../src/storage/node-storage.js';
import type { Storage, StorageFile } from '../../src/storage/storage.js';

export interface Fault {
  /** Files whose writes fail. */
  path: RegExp;
  code: 'ENOSPC' | 'EIO';
  /** Let this many matching writes through first. */
  skip?: number;
  /** Fail only this many writes, then clear. */
  times?: number;
  /** Write the first half of the bytes before failing (a short write, as a full disk gives). */
  partial?: boolean;
}

/** The real file system, with writes to matching paths failing while a fault is armed. */
export class FaultyStorage implements Storage {
  fault: Fault | null = null;
  injected = 0;

  private check(path: string, bytes: Uint8Array[], write: (b: Uint8Array, pos: number) => void, pos: number): boolean {
    const f = this.fault;
    if (!f || !f.path.test(path)) return false;
    if (f.skip) {
      f.skip--;
      return false;
    }
    this.injected++;
    if (f.times !== undefined && --f.times <= 0) this.fault = null;
    if (f.partial) {
      const all = Buffer.concat(bytes);
      write(all.subarray(0, all.length >> 1), pos);
    }
    throw Object.assign(new Error(`${f.code}: injected fault, write '${path}'`), { code: f.code });
  }

  open(path: string, mode: 'read' | 'write' | 'create'): StorageFile {
    const f = nodeStorage.open(path, mode);
    const self = this;
    const raw = (b: Uint8Array, pos: number) => f.write(b, pos);
    return {
      path: f.path,
      read: (...a) => f.read(...a),
      write(buf, pos) {
        if (!self.check(path, [buf], raw, pos)) f.write(buf, pos);
      },
      writev(bufs, pos) {
        if (!self.check(path, bufs, raw, pos)) f.writev(bufs, pos);
      },
      size: () => f.size(),
      truncate: (n) => f.truncate(n),
      sync: () => f.sync(),
      close: () => f.close(),
    };
  }
  exists = (p: string) => nodeStorage.exists(p);
  list = (d: string) => nodeStorage.list(d);
  mkdirp = (d: string) => nodeStorage.mkdirp(d);
  rename = (a: string, b: string) => nodeStorage.rename(a, b);
  remove = (p: string) => nodeStorage.remove(p);
  syncDir = (d: string) => nodeStorage.syncDir(d);
  sizeOf = (p: string) => nodeStorage.sizeOf(p);
}
