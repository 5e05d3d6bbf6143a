// Loaded packs, kept by path up to a byte budget (least recently used goes first).
import { readPack, type Pack } from '../increment/pack.js';
import { lruGet } from '../lru.js';
import type { Storage } from '../storage/storage.js';

export class PackCache {
  private readonly packs = new Map<string, Pack>();
  private bytes = 0;

  constructor(private readonly storage: Storage, private readonly bytesMax = 256 * 2 ** 20) {}

  /** The pack if it is loaded, without loading it or changing the order of eviction. */
  peek(path: string): Pack | undefined {
    return this.packs.get(path);
  }

  get(path: string): Pack {
    const cached = lruGet(this.packs, path);
    if (cached) return cached;
    const p = readPack(this.storage, path);
    this.packs.set(path, p);
    this.bytes += p.bytes;
    for (const [k, v] of this.packs) {
      if (this.bytes <= this.bytesMax || k === path) break;
      this.packs.delete(k);
      this.bytes -= v.bytes;
    }
    return p;
  }
}
