// How much room history takes (the files under journal/, increments/ and index/) and may take (the
// capacity, resolved against the file system). Both are looked up at most once a second, and the
// walk stays cheap with many files: a sealed segment or a pack never changes once it has its name,
// so its size is read once; only the open segment, temporary files and the index are measured again.
// The second is real (monotonic) time, not the store's clock: it bounds the cost of measuring.
import { statfsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { StoreConfig } from '../config.js';
import { joinPath, type Storage } from '../storage/storage.js';
import { capacityBytes, parseCapacity } from './capacity.js';

/** The directories whose files are history. */
export const HISTORY_DIRS = ['journal', 'increments', 'index'] as const;

/** How long a measurement is reused. */
export const FOOTPRINT_REFRESH_MS = 1000;

/** Size of the file system holding `dir`, in bytes. */
export function fileSystemBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.blocks * s.bsize;
}

/** A file that keeps its size once it has its name: a sealed journal segment or a pack. */
function isImmutable(dir: string, name: string): boolean {
  if (dir === 'journal') return name.endsWith('.seg') && !name.endsWith('-open.seg');
  if (dir === 'increments') return name.endsWith('.pack');
  return false;
}

export class HistoryFootprint {
  /** Sizes of immutable files, by path, as of the last walk. */
  private sizes = new Map<string, number>();
  private bytesAt = -Infinity;
  private bytes = 0;
  private fsAt = -Infinity;
  private fsBytes = 0;

  constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    private readonly fsBytesOf: (dir: string) => number = fileSystemBytes,
    private readonly monotonicMs: () => number = () => performance.now(),
  ) {}

  /** Total bytes of the history files (measured at most once per FOOTPRINT_REFRESH_MS unless `fresh`). */
  historyBytes(fresh = false): number {
    const now = this.monotonicMs();
    if (!fresh && now - this.bytesAt < FOOTPRINT_REFRESH_MS) return this.bytes;
    const sizes = new Map<string, number>();
    let total = 0;
    for (const sub of HISTORY_DIRS) {
      const dir = joinPath(this.dir, sub);
      for (const name of this.storage.list(dir)) {
        const path = joinPath(dir, name);
        const immutable = isImmutable(sub, name);
        const size = (immutable ? this.sizes.get(path) : undefined) ?? this.sizeOf(path);
        if (size === null) continue; // removed since the listing (retired, or a temporary file renamed)
        if (immutable) sizes.set(path, size);
        total += size;
      }
    }
    this.sizes = sizes;
    this.bytes = total;
    this.bytesAt = now;
    return total;
  }

  /** The capacity in `config`, in bytes (null: none). A share of the file system is resolved against its size. */
  capacityBytes(config: StoreConfig): number | null {
    const c = config.capacity === undefined ? null : parseCapacity(config.capacity);
    if (c === null || 'bytes' in c) return capacityBytes(c, 0);
    const now = this.monotonicMs();
    if (now - this.fsAt >= FOOTPRINT_REFRESH_MS) {
      this.fsBytes = this.fsBytesOf(this.dir);
      this.fsAt = now;
    }
    return capacityBytes(c, this.fsBytes);
  }

  private sizeOf(path: string): number | null {
    try {
      return this.storage.sizeOf(path);
    } catch (err) {
      if (!this.storage.exists(path)) return null;
      throw err;
    }
  }
}
