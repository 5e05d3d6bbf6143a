// The storage interface: every byte rewind reads or writes goes through these two small types, so
// tests can substitute a simulated disk (lost unsynced writes, torn writes, EIO, ENOSPC).
//
// Reads and writes are synchronous page-cache operations: they keep the order of writes to one file
// exactly the order of calls (capture relies on it), and cost no promise per request. Only making
// data durable (`sync`) is asynchronous, so one fsync can serve many writers (group commit).

export type OpenMode =
  /** read only; the file must exist */
  | 'read'
  /** read and write; the file must exist */
  | 'write'
  /** read and write; created empty when missing (never truncated) */
  | 'create';

export interface StorageFile {
  readonly path: string;
  /** Reads up to `length` bytes (default: all of `buf` from `offset`) at `position`; returns the count (short only at end of file). */
  read(buf: Uint8Array, position: number, offset?: number, length?: number): number;
  /** Writes all of `buf` at `position` or throws. */
  write(buf: Uint8Array, position: number): void;
  /** Writes the buffers back to back at `position` or throws. */
  writev(bufs: Uint8Array[], position: number): void;
  size(): number;
  truncate(size: number): void;
  /** Makes every completed write to this file durable. */
  sync(): Promise<void>;
  close(): void;
  /**
   * Optional asynchronous forms (a thread of the I/O pool does the copy), for bulk work that must
   * not hold up the event loop: building increments and updating the replica. Files without them
   * are served by the synchronous calls (see readAsync/writeAsync below).
   */
  readAsync?(buf: Uint8Array, position: number, offset?: number, length?: number): Promise<number>;
  writeAsync?(buf: Uint8Array, position: number): Promise<void>;
  writevAsync?(bufs: Uint8Array[], position: number): Promise<void>;
  /**
   * The operating system's descriptor, for a plain file of this process: the kernel pool's threads
   * read and write it directly, off the event loop. Absent for simulated files, and a wrapper that
   * intercepts I/O (fault injection) must not pass it through, or its faults would be bypassed.
   */
  readonly osFd?: number;
}

export function readAsync(f: StorageFile, buf: Uint8Array, position: number, offset?: number, length?: number): Promise<number> {
  return f.readAsync ? f.readAsync(buf, position, offset, length) : Promise.resolve().then(() => f.read(buf, position, offset, length));
}

export function writeAsync(f: StorageFile, buf: Uint8Array, position: number): Promise<void> {
  return f.writeAsync ? f.writeAsync(buf, position) : Promise.resolve().then(() => f.write(buf, position));
}

export function writevAsync(f: StorageFile, bufs: Uint8Array[], position: number): Promise<void> {
  return f.writevAsync ? f.writevAsync(bufs, position) : Promise.resolve().then(() => f.writev(bufs, position));
}

export interface Storage {
  open(path: string, mode: OpenMode): StorageFile;
  exists(path: string): boolean;
  /** Names (not paths) of the entries of a directory, sorted; [] if it does not exist. */
  list(dir: string): string[];
  mkdirp(dir: string): void;
  /** Atomic replace. */
  rename(from: string, to: string): void;
  remove(path: string): void;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  syncDir(dir: string): Promise<void>;
  /** Size of a file or block device. */
  sizeOf(path: string): number;
}

/**
 * Writes a whole small file atomically: temp file, sync, rename, sync the directory. Writers that may
 * race on one file pass a temp path of their own, so each rename installs one whole file.
 */
/** A new file `tmp` holding `data`, left open for the caller to sync and close. */
function writeTemp(storage: Storage, tmp: string, data: Uint8Array): StorageFile {
  const f = storage.open(tmp, 'create');
  try {
    f.truncate(0);
    f.write(data, 0);
    return f;
  } catch (err) {
    f.close();
    throw err;
  }
}

export async function writeFileAtomic(storage: Storage, path: string, data: Uint8Array, tmp = `${path}.tmp`): Promise<void> {
  const f = writeTemp(storage, tmp, data);
  try {
    await f.sync();
  } finally {
    f.close();
  }
  storage.rename(tmp, path);
  await storage.syncDir(dirname(path));
}

/**
 * The same without syncs: readers see all of the new file or none of it, but a crash may lose it.
 * For files that matter only while this process runs (a reader's lease).
 */
export function replaceFileSync(storage: Storage, path: string, data: Uint8Array, tmp = `${path}.tmp`): void {
  writeTemp(storage, tmp, data).close();
  storage.rename(tmp, path);
}

/** Reads a whole file. */
export function readWholeFile(storage: Storage, path: string): Buffer {
  const f = storage.open(path, 'read');
  try {
    const size = f.size();
    const buf = Buffer.allocUnsafe(size);
    const n = f.read(buf, 0);
    return n === size ? buf : buf.subarray(0, n);
  } finally {
    f.close();
  }
}

export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : path.slice(0, i);
}

export function joinPath(...parts: string[]): string {
  return parts.join('/').replace(/\/+/g, '/');
}
