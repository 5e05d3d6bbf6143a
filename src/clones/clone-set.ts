// The clones of an open store, as the writer's process uses them: `store.clones`. A clone is opened
// once per process and shared by every user (each NBD connection to it holds a handle), so a flush on
// one connection covers the writes of all. It is closed (flushed) when the last handle goes, and every
// clone is closed with the store.
import { badArgument, closed } from '../errors.js';
import type { Target } from '../restore/target.js';
import { clonePaths, cloneHolds, listRecords, readRecord, type CloneRecord } from './clone-record.js';
import { CloneVolume } from './clone-volume.js';
import { createClone, deleteClone, listClones, markOpen, type CloneContext, type CloneInfo } from './clones.js';
import { Overlay } from './overlay.js';

/** One user's hold on an open clone; close() once when done. */
export interface CloneHandle {
  readonly clone: CloneVolume;
  close(): Promise<void>;
}

interface OpenClone {
  clone: CloneVolume;
  users: number;
  unmark: () => void;
}

export class CloneSet {
  private readonly open = new Map<string, Promise<OpenClone>>();
  private closedAll = false;

  constructor(private readonly ctx: CloneContext) {}

  private get storage() {
    return this.ctx.history.storage;
  }

  /** Creates a clone of `volume` at `target` (see clones.ts createClone). */
  create(name: string, volume: string, target: Target, opts: { maxBytes?: number | null } = {}): Promise<CloneRecord> {
    return createClone(this.ctx, name, volume, target, opts);
  }

  list(): CloneInfo[] {
    return listClones(this.ctx);
  }

  /** The clones' records (no look at their overlays). */
  records(): CloneRecord[] {
    return listRecords(this.storage, this.ctx.dir);
  }

  /** True when `name` names a clone (its record exists). */
  exists(name: string): boolean {
    return readRecord(this.storage, this.ctx.dir, name) !== null;
  }

  /** Deletes a clone; refused while it is open, here or in another process. */
  delete(name: string): Promise<{ leftovers: boolean }> {
    return deleteClone(this.ctx, name, (n) => this.open.has(n));
  }

  /** The points the clones hold, for the lifecycle (read from their records each time). */
  holds(): { name: string; seq: number }[] {
    return cloneHolds(this.storage, this.ctx.dir);
  }

  /** Opens clone `name` for reading and writing (shared with every other user in this process). */
  async acquire(name: string): Promise<CloneHandle> {
    if (this.closedAll) throw closed(`clones of store ${this.ctx.dir}`);
    let entry = this.open.get(name);
    if (!entry) {
      entry = this.openClone(name);
      this.open.set(name, entry);
      entry.catch(() => this.open.delete(name));
    }
    const o = await entry;
    o.users++;
    let done = false;
    return {
      clone: o.clone,
      close: async () => {
        if (done) return;
        done = true;
        if (--o.users > 0) return;
        this.open.delete(name);
        await this.shut(o);
      },
    };
  }

  private async openClone(name: string): Promise<OpenClone> {
    const { history, dir } = this.ctx;
    const unmark = markOpen(this.storage, dir, name);
    try {
      const record = readRecord(this.storage, dir, name);
      if (!record) throw badArgument(`no clone "${name}"`);
      const v = history.volumes.byName(record.volume);
      const view = history.view(record.volume, record.seq);
      try {
        const overlay = await Overlay.open(this.storage, clonePaths(dir, name), history.config.blockSize, v.size);
        return { clone: new CloneVolume(record, view, overlay), users: 0, unmark };
      } catch (err) {
        view.close();
        throw err;
      }
    } catch (err) {
      unmark();
      throw err;
    }
  }

  private async shut(o: OpenClone): Promise<void> {
    try {
      await o.clone.close();
    } finally {
      o.unmark();
    }
  }

  /** Closes (flushes) every open clone; no clone opens afterwards. */
  async closeAll(): Promise<void> {
    this.closedAll = true;
    const entries = [...this.open.values()];
    this.open.clear();
    // A clone that failed to open has nothing to close.
    const results = await Promise.allSettled(entries.map((e) => e.then((o) => this.shut(o), () => undefined)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** Stops every open clone without flushing, as a crash would (tests and simulations). */
  async abandonAll(): Promise<void> {
    this.closedAll = true;
    const entries = [...this.open.values()];
    this.open.clear();
    for (const e of await Promise.allSettled(entries)) if (e.status === 'fulfilled') e.value.clone.abandon();
  }
}
