// Where a restore's bytes go, so that a restore that fails leaves nothing behind. A regular file (new
// or existing) is written under a temporary name next to it — `<out>.rewind-partial-<pid>` — synced,
// and renamed over `<out>` only once every byte is in: until then `<out>` is absent or still the old
// file, never a partial volume. A failure removes the temporary file; a crash may leave it (its name
// says what it is), never a partial `<out>`. A block or character device cannot be renamed into
// place: it is written in place, as before, and a failed restore leaves it partly written.
import { badArgument } from '../errors.js';
import { dirname, type Storage, type StorageFile } from '../storage/storage.js';

/** The suffix of a restore's temporary file (followed by the writer's pid). */
export const PARTIAL_SUFFIX = '.rewind-partial-';

export class RestoreOutput {
  private committed = false;
  private closed = false;

  private constructor(
    private readonly storage: Storage,
    /** Where the volume ends up. */
    readonly path: string,
    /** Where it is written: a temporary file, or `path` itself for a device. */
    readonly writePath: string,
    readonly file: StorageFile,
    /** Zero chunks may be left as holes (a fresh file); a device is written whole. */
    readonly sparse: boolean,
  ) {}

  /** The temporary file a restore to `path` writes first. */
  static partialPath(path: string): string {
    return `${path}${PARTIAL_SUFFIX}${process.pid}`;
  }

  /** Opens the output of a restore of `size` bytes of `volume` to `path` (nothing at `path` changes yet). */
  static open(storage: Storage, path: string, size: number, volume: string): RestoreOutput {
    if (storage.exists(path) && !isRegularFile(storage, path)) {
      const dev = storage.open(path, 'write');
      if (dev.size() < size) {
        const have = dev.size();
        dev.close();
        throw badArgument(`${path} holds ${have} bytes; volume "${volume}" needs ${size}`);
      }
      return new RestoreOutput(storage, path, path, dev, false);
    }
    const tmp = RestoreOutput.partialPath(path);
    const f = storage.open(tmp, 'create');
    try {
      f.truncate(0);
      f.truncate(size);
    } catch (err) {
      f.close();
      storage.remove(tmp);
      throw err;
    }
    return new RestoreOutput(storage, path, tmp, f, true);
  }

  /** True when the output goes through a temporary file and a rename. */
  get atomic(): boolean {
    return this.writePath !== this.path;
  }

  /** Makes every byte written durable and closes the file (the rename is `commit`'s). */
  async finish(): Promise<void> {
    try {
      await this.file.sync();
    } finally {
      this.close();
    }
  }

  /** Puts the finished output in place (the directory is synced by `syncDirs`). */
  commit(): void {
    if (!this.atomic || this.committed) return;
    this.close();
    this.storage.rename(this.writePath, this.path);
    this.committed = true;
  }

  /** After a failure: closes the file and removes the temporary file (a device keeps what was written). */
  abandon(): void {
    this.close();
    if (this.atomic && !this.committed) this.storage.remove(this.writePath);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
  }

  /** Makes the renames of committed outputs durable: one sync per directory. */
  static async syncDirs(storage: Storage, outputs: readonly RestoreOutput[]): Promise<void> {
    const dirs = new Set(outputs.filter((o) => o.atomic).map((o) => dirname(o.path)));
    for (const d of dirs) await storage.syncDir(d);
  }
}

/**
 * Whether an existing `path` is a regular file, through the storage interface: a regular file can
 * be truncated to its own size (nothing changes), a device or a pipe cannot.
 */
function isRegularFile(storage: Storage, path: string): boolean {
  const f = storage.open(path, 'write');
  try {
    f.truncate(f.size());
    return true;
  } catch {
    return false;
  } finally {
    f.close();
  }
}
