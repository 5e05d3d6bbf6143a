// The real file system behind the storage interface, counting the bytes read and written through it:
// for tests that an operation costs nothing in proportion to a volume's size.
import type { Storage, StorageFile } from '../../src/storage/storage.js';

export function countingStorage(inner: Storage) {
  let read = 0;
  let written = 0;
  const storage: Storage = {
    open(path, mode): StorageFile {
      const f = inner.open(path, mode);
      // No osFd: the kernel pool's threads would read and write past the count.
      return {
        path: f.path,
        read(buf, position, offset, length) {
          const n = f.read(buf, position, offset, length);
          read += n;
          return n;
        },
        write(buf, position) {
          f.write(buf, position);
          written += buf.byteLength;
        },
        writev(bufs, position) {
          f.writev(bufs, position);
          for (const b of bufs) written += b.byteLength;
        },
        size: () => f.size(),
        truncate: (n) => f.truncate(n),
        sync: () => f.sync(),
        close: () => f.close(),
      };
    },
    exists: (p) => inner.exists(p),
    list: (d) => inner.list(d),
    mkdirp: (d) => inner.mkdirp(d),
    rename: (a, b) => inner.rename(a, b),
    remove: (p) => inner.remove(p),
    syncDir: (d) => inner.syncDir(d),
    sizeOf: (p) => inner.sizeOf(p),
  };
  return {
    storage,
    reset() {
      read = 0;
      written = 0;
    },
    totals: () => ({ read, written }),
  };
}
