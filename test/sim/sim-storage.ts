// The simulated disk: an in-memory file system behind the storage interface, fully deterministic
// from a seed, for crash and fault simulations (TigerBeetle style: a failure replays from its seed).
// Only the tests use it (the library takes any Storage), so it lives here rather than in src/.
//
// The model: a disk with a page cache and ordered metadata.
// - A file (inode) has its current contents (the page cache: what every read sees) and its durable
//   contents (as of its last `sync()`), plus a log of the writes and truncates made since that sync.
// - Each directory has a current namespace (name -> inode) and a durable one, copied from the current
//   one by `syncDir(dir)`. A create, rename or remove is durable only after `syncDir` of the directory
//   holding the name (a rename across directories needs both). Directories made by `mkdirp` are
//   durable at once (the engine makes them only when a store is created).
// - `crash()` is power loss: the namespace reverts to the durable one (unsynced creates vanish,
//   unsynced renames and removes revert); every file goes back to its durable contents, then each
//   unsynced write or truncate of its log is independently kept or lost (seeded PRNG), and the last
//   one, when kept, may be torn at a 512-byte sector boundary (only a prefix of its sectors lands).
//   Handles opened before the crash are dead: any use throws.
// - `kill()` is a process crash (kill -9): the page cache survives, so nothing is lost, reverted or
//   torn; only the handles die (and the unsynced log stays, for a later power loss to lose).
// - Faults: `failNext` makes the next matching operations throw a Node-style EIO or ENOSPC (nothing
//   changes); `capacityBytes` bounds the total size of all files (a growing write or truncate past
//   it throws ENOSPC); `crashAtOp(n)` makes the n-th mutating operation from now (write, writev,
//   truncate, sync, syncDir, rename, remove, open for create) throw `SimCrash` without taking effect,
//   and freezes the disk: every later call throws SimCrash until `crash()`. Closing a handle is
//   always allowed (it changes nothing on disk), so cleanup paths do not mask the crash.
// - `sync()` and `syncDir()` resolve on a microtask: a workload that never yields to the event loop
//   runs the same way every time.
import type { OpenMode, Storage, StorageFile } from '../../src/storage/storage.js';
import { dirname } from '../../src/storage/storage.js';
import { prng } from '../../src/prng.js';

export const SECTOR_BYTES = 512;

/** Thrown by every call once the simulated disk has crashed (see `crashAtOp`). */
export class SimCrash extends Error {
  constructor(readonly op: string, readonly path: string) {
    super(`simulated crash at ${op} ${path}`);
    this.name = 'SimCrash';
  }
}

export type SimErrorCode = 'EIO' | 'ENOSPC';
export type SimOp = 'open' | 'create' | 'read' | 'write' | 'truncate' | 'sync' | 'syncDir' | 'rename' | 'remove';

export interface FailSpec {
  /** The operation to fail ('write' includes writev; 'open' any open, 'create' an open in create mode). */
  op: SimOp;
  /** Only operations on paths matching this. */
  path?: RegExp;
  error: SimErrorCode;
  /** How many matching operations fail (default 1). */
  count?: number;
}

export interface CrashOptions {
  /** Probability that each unsynced write or truncate survives (default 0.5). */
  keepProbability?: number;
  /** Probability that the last unsynced write of a file, when kept, is torn at a sector boundary (default 0.5). */
  tornProbability?: number;
}

export interface SimStorageOptions {
  seed: number;
  /** Total bytes of all files; growth past it throws ENOSPC (default: unlimited). */
  capacityBytes?: number;
}

export interface SimStats {
  ops: number;
  crashes: number;
  faults: number;
  unsyncedKept: number;
  unsyncedLost: number;
  torn: number;
}

const MESSAGES: Record<SimErrorCode, string> = { EIO: 'i/o error', ENOSPC: 'no space left on device' };

/** A Node-style errno error. */
export function errnoError(code: string, message: string, syscall: string, path?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}, ${syscall}${path ? ` '${path}'` : ''}`), { code, syscall, path });
}

type LogEntry = { kind: 'write'; position: number; bytes: Buffer } | { kind: 'truncate'; size: number };

class Inode {
  data: Buffer;
  size = 0;
  durable: Buffer;
  durableSize = 0;
  log: LogEntry[] = [];

  constructor(readonly id: number) {
    this.data = Buffer.alloc(0);
    this.durable = Buffer.alloc(0);
  }

  static resize(buf: Buffer, used: number, need: number): Buffer {
    if (need <= buf.byteLength) return buf;
    const next = Buffer.alloc(Math.max(need, buf.byteLength * 2, 4096));
    buf.copy(next, 0, 0, used);
    return next;
  }

  write(bytes: Uint8Array, position: number): void {
    const end = position + bytes.byteLength;
    this.data = Inode.resize(this.data, this.size, end);
    if (position > this.size) this.data.fill(0, this.size, position);
    this.data.set(bytes, position);
    this.size = Math.max(this.size, end);
  }

  truncate(size: number): void {
    if (size > this.size) {
      this.data = Inode.resize(this.data, this.size, size);
      this.data.fill(0, this.size, size);
    }
    this.size = size;
  }

  /** Makes the current contents durable: replays the log onto the durable copy. */
  sync(): void {
    for (const e of this.log) applyEntry(this, e, 'durable');
    this.log = [];
  }
}

/** Applies a log entry to the durable copy (after a sync) or rebuilds contents after a crash. */
function applyEntry(ino: Inode, e: LogEntry, to: 'durable', bytes?: Buffer): void {
  void to;
  if (e.kind === 'write') {
    const b = bytes ?? e.bytes;
    const end = e.position + b.byteLength;
    ino.durable = Inode.resize(ino.durable, ino.durableSize, end);
    if (e.position > ino.durableSize) ino.durable.fill(0, ino.durableSize, e.position);
    ino.durable.set(b, e.position);
    ino.durableSize = Math.max(ino.durableSize, end);
  } else {
    if (e.size > ino.durableSize) {
      ino.durable = Inode.resize(ino.durable, ino.durableSize, e.size);
      ino.durable.fill(0, ino.durableSize, e.size);
    }
    ino.durableSize = e.size;
  }
}

function normalize(path: string): string {
  let p = path.replace(/\/+/g, '/');
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

class SimFile implements StorageFile {
  private closed = false;

  constructor(private readonly sim: SimStorage, readonly path: string, private readonly ino: Inode, private readonly generation: number, private readonly writable: boolean) {}

  private check(op: string): void {
    this.sim.checkAlive(op, this.path);
    if (this.closed) throw errnoError('EBADF', 'bad file descriptor', op, this.path);
    if (this.generation !== this.sim.generation) throw new Error(`stale handle: ${this.path} was opened before a simulated crash (${op})`);
  }

  read(buf: Uint8Array, position: number, offset = 0, length = buf.byteLength - offset): number {
    this.check('read');
    this.sim.fault('read', this.path);
    const n = Math.max(0, Math.min(length, this.ino.size - position));
    if (n > 0) buf.set(this.ino.data.subarray(position, position + n), offset);
    return n;
  }

  write(buf: Uint8Array, position: number): void {
    this.writev([buf], position);
  }

  writev(bufs: Uint8Array[], position: number): void {
    this.check('write');
    if (!this.writable) throw errnoError('EBADF', 'bad file descriptor', 'write', this.path);
    this.sim.mutate('write', this.path);
    this.sim.fault('write', this.path);
    const total = bufs.reduce((s, b) => s + b.byteLength, 0);
    this.sim.reserve(Math.max(0, position + total - this.ino.size), 'write');
    const bytes = bufs.length === 1 ? Buffer.from(bufs[0]) : Buffer.concat(bufs);
    this.ino.write(bytes, position);
    this.ino.log.push({ kind: 'write', position, bytes });
  }

  size(): number {
    this.check('fstat');
    return this.ino.size;
  }

  truncate(size: number): void {
    this.check('ftruncate');
    if (!this.writable) throw errnoError('EINVAL', 'invalid argument', 'ftruncate', this.path);
    this.sim.mutate('truncate', this.path);
    this.sim.fault('truncate', this.path);
    this.sim.reserve(Math.max(0, size - this.ino.size), 'ftruncate');
    this.ino.truncate(size);
    this.ino.log.push({ kind: 'truncate', size });
  }

  sync(): Promise<void> {
    try {
      this.check('fsync');
      this.sim.mutate('sync', this.path);
      this.sim.fault('sync', this.path);
    } catch (err) {
      return Promise.reject(err);
    }
    this.ino.sync();
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }
}

export class SimStorage implements Storage {
  /** Bumped by every crash: handles of an older generation are dead. */
  generation = 0;
  capacityBytes: number;
  readonly stats: SimStats = { ops: 0, crashes: 0, faults: 0, unsyncedKept: 0, unsyncedLost: 0, torn: 0 };
  private readonly rand: () => number;
  private nextInode = 1;
  private readonly dirs = new Set<string>(['/', '.']);
  private readonly current = new Map<string, Map<string, Inode>>();
  private readonly durable = new Map<string, Map<string, Inode>>();
  private readonly failures: (FailSpec & { left: number })[] = [];
  private crashOp = Infinity;
  private frozenBy: SimCrash | null = null;
  private freezeWaiters: ((c: SimCrash) => void)[] = [];

  constructor(opts: SimStorageOptions) {
    this.rand = prng(opts.seed);
    this.capacityBytes = opts.capacityBytes ?? Infinity;
  }

  /** Mutating operations so far (the clock `crashAtOp` counts on). */
  get ops(): number {
    return this.stats.ops;
  }

  /** True once a `crashAtOp` point was reached and until `crash()`. */
  get frozen(): boolean {
    return this.frozenBy !== null;
  }

  /** Resolves with the SimCrash when the disk freezes (a workload can stop waiting on an engine that never will finish). */
  whenFrozen(): Promise<SimCrash> {
    return this.frozenBy ? Promise.resolve(this.frozenBy) : new Promise((r) => this.freezeWaiters.push(r));
  }

  // ---- fault injection ----

  failNext(spec: FailSpec): void {
    this.failures.push({ ...spec, left: spec.count ?? 1 });
  }

  clearFaults(): void {
    this.failures.length = 0;
  }

  /** The n-th mutating operation from now (1 = the next one) throws SimCrash and freezes the disk. */
  crashAtOp(n: number): void {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`crashAtOp(${n}): n must be a positive integer`);
    this.crashOp = this.stats.ops + n;
  }

  /** Total bytes of the files in the current namespace. */
  usedBytes(): number {
    let used = 0;
    const seen = new Set<Inode>();
    for (const entries of this.current.values()) for (const ino of entries.values()) if (!seen.has(ino)) { seen.add(ino); used += ino.size; }
    return used;
  }

  /** A process crash: handles die, every byte written stays (see the header). */
  kill(): void {
    this.stats.crashes++;
    this.generation++;
    this.frozenBy = null;
    this.crashOp = Infinity;
  }

  /** Power loss. See the header for what survives. */
  crash(opts: CrashOptions = {}): void {
    const keepP = opts.keepProbability ?? 0.5;
    const tornP = opts.tornProbability ?? 0.5;
    this.stats.crashes++;
    this.generation++;
    this.frozenBy = null;
    this.crashOp = Infinity;
    this.current.clear();
    const seen = new Set<Inode>();
    // Deterministic order: directories and names sorted.
    for (const dir of [...this.durable.keys()].sort()) {
      const entries = this.durable.get(dir)!;
      this.current.set(dir, new Map(entries));
      for (const name of [...entries.keys()].sort()) {
        const ino = entries.get(name)!;
        if (seen.has(ino)) continue;
        seen.add(ino);
        this.recoverInode(ino, keepP, tornP);
      }
    }
  }

  private recoverInode(ino: Inode, keepP: number, tornP: number): void {
    const log = ino.log;
    ino.log = [];
    for (let i = 0; i < log.length; i++) {
      const e = log[i];
      if (this.rand() >= keepP) {
        this.stats.unsyncedLost++;
        continue;
      }
      this.stats.unsyncedKept++;
      if (i === log.length - 1 && e.kind === 'write' && this.rand() < tornP) {
        // Sector boundaries strictly inside the write: only the sectors before one of them land.
        const first = Math.floor(e.position / SECTOR_BYTES) + 1;
        const last = Math.ceil((e.position + e.bytes.byteLength) / SECTOR_BYTES) - 1;
        if (last >= first) {
          const cut = (first + Math.floor(this.rand() * (last - first + 1))) * SECTOR_BYTES;
          this.stats.torn++;
          applyEntry(ino, e, 'durable', e.bytes.subarray(0, cut - e.position));
          continue;
        }
      }
      applyEntry(ino, e, 'durable');
    }
    // What survived is now both the durable and the current contents.
    ino.data = Buffer.from(ino.durable.subarray(0, ino.durableSize));
    ino.size = ino.durableSize;
  }

  // ---- internal checks (used by SimFile) ----

  /** @internal */
  checkAlive(op: string, path: string): void {
    if (this.frozenBy) throw new SimCrash(op, path);
  }

  /** Told of every mutating operation as it is counted (a test finds the op numbers of a step to crash at). */
  observer: ((op: string, path: string) => void) | null = null;

  /** @internal Counts a mutating operation; throws SimCrash at the crash point. */
  mutate(op: string, path: string): void {
    this.checkAlive(op, path);
    this.stats.ops++;
    this.observer?.(op, path);
    if (this.stats.ops >= this.crashOp) {
      this.frozenBy = new SimCrash(op, path);
      for (const w of this.freezeWaiters.splice(0)) w(this.frozenBy);
      throw this.frozenBy;
    }
  }

  /** @internal Throws an injected fault for this operation, if one is pending. */
  fault(op: SimOp, path: string): void {
    const i = this.failures.findIndex((f) => f.op === op && (!f.path || f.path.test(path)));
    if (i < 0) return;
    const f = this.failures[i];
    if (--f.left <= 0) this.failures.splice(i, 1);
    this.stats.faults++;
    throw errnoError(f.error, MESSAGES[f.error], op, path);
  }

  /** @internal Throws ENOSPC when growing the files by `bytes` passes the capacity. */
  reserve(bytes: number, syscall: string): void {
    if (bytes > 0 && Number.isFinite(this.capacityBytes) && this.usedBytes() + bytes > this.capacityBytes) {
      this.stats.faults++;
      throw errnoError('ENOSPC', MESSAGES.ENOSPC, syscall);
    }
  }

  // ---- the Storage interface ----

  private lookup(path: string): Inode | undefined {
    return this.current.get(dirname(path))?.get(basename(path));
  }

  private requireDir(path: string, syscall: string): Map<string, Inode> {
    const dir = dirname(path);
    if (!this.dirs.has(dir)) throw errnoError('ENOENT', 'no such file or directory', syscall, path);
    let m = this.current.get(dir);
    if (!m) {
      m = new Map();
      this.current.set(dir, m);
    }
    return m;
  }

  open(rawPath: string, mode: OpenMode): StorageFile {
    const path = normalize(rawPath);
    this.checkAlive('open', path);
    if (mode === 'create') this.mutate('create', path);
    this.fault('open', path);
    if (mode === 'create') this.fault('create', path);
    if (this.dirs.has(path)) throw errnoError('EISDIR', 'illegal operation on a directory', 'open', path);
    const entries = this.requireDir(path, 'open');
    let ino = entries.get(basename(path));
    if (!ino) {
      if (mode !== 'create') throw errnoError('ENOENT', 'no such file or directory', 'open', path);
      ino = new Inode(this.nextInode++);
      entries.set(basename(path), ino);
    }
    return new SimFile(this, path, ino, this.generation, mode !== 'read');
  }

  exists(rawPath: string): boolean {
    const path = normalize(rawPath);
    this.checkAlive('exists', path);
    return this.dirs.has(path) || this.lookup(path) !== undefined;
  }

  list(rawDir: string): string[] {
    const dir = normalize(rawDir);
    this.checkAlive('list', dir);
    if (!this.dirs.has(dir)) return [];
    const names = new Set(this.current.get(dir)?.keys() ?? []);
    const prefix = dir === '/' ? '/' : `${dir}/`;
    for (const d of this.dirs) if (d.startsWith(prefix) && d.length > prefix.length && !d.slice(prefix.length).includes('/')) names.add(d.slice(prefix.length));
    return [...names].sort();
  }

  mkdirp(rawDir: string): void {
    const dir = normalize(rawDir);
    this.checkAlive('mkdir', dir);
    if (this.lookup(dir)) throw errnoError('EEXIST', 'file already exists', 'mkdir', dir);
    for (let d = dir; !this.dirs.has(d); d = dirname(d)) this.dirs.add(d);
  }

  rename(rawFrom: string, rawTo: string): void {
    const from = normalize(rawFrom);
    const to = normalize(rawTo);
    this.mutate('rename', from);
    this.fault('rename', from);
    const src = this.current.get(dirname(from));
    const ino = src?.get(basename(from));
    if (!src || !ino) throw errnoError('ENOENT', 'no such file or directory', 'rename', from);
    const dst = this.requireDir(to, 'rename');
    src.delete(basename(from));
    dst.set(basename(to), ino);
  }

  remove(rawPath: string): void {
    const path = normalize(rawPath);
    this.mutate('remove', path);
    this.fault('remove', path);
    this.current.get(dirname(path))?.delete(basename(path));
  }

  syncDir(rawDir: string): Promise<void> {
    const dir = normalize(rawDir);
    try {
      this.mutate('syncDir', dir);
      this.fault('syncDir', dir);
      if (!this.dirs.has(dir)) throw errnoError('ENOENT', 'no such file or directory', 'open', dir);
    } catch (err) {
      return Promise.reject(err);
    }
    this.durable.set(dir, new Map(this.current.get(dir) ?? []));
    return Promise.resolve();
  }

  sizeOf(rawPath: string): number {
    const path = normalize(rawPath);
    this.checkAlive('stat', path);
    const ino = this.lookup(path);
    if (!ino) throw errnoError('ENOENT', 'no such file or directory', 'stat', path);
    return ino.size;
  }

  // ---- for tests ----

  /** The current contents of a file (a copy), as a read would see them. */
  readFile(rawPath: string): Buffer {
    const path = normalize(rawPath);
    const ino = this.lookup(path);
    if (!ino) throw errnoError('ENOENT', 'no such file or directory', 'open', path);
    return Buffer.from(ino.data.subarray(0, ino.size));
  }

  /** The durable contents of a file as named in the durable namespace (a copy), or null. */
  readDurable(rawPath: string): Buffer | null {
    const path = normalize(rawPath);
    const ino = this.durable.get(dirname(path))?.get(basename(path));
    return ino ? Buffer.from(ino.durable.subarray(0, ino.durableSize)) : null;
  }
}
