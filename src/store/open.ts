// Opening a store for writing: the lock, the volumes, the transaction index, the journal (its tail
// scanned), the kernel pool, the pack catalog and the production thread, with crash recovery run
// before the writer sees any of it. If anything fails, what was opened is closed again and the lock
// released.
import { readConfig, type StoreConfig } from '../config.js';
import { systemClock, type Clock } from '../clock.js';
import { corrupt } from '../errors.js';
import { listPacks } from '../increment/pack.js';
import { KernelPool } from '../increment/pool.js';
import { Journal } from '../journal/journal.js';
import type { RecordRef } from '../journal/reader.js';
import { HistoryFootprint } from '../lifecycle/footprint.js';
import { LIMITS, type Limits } from '../limits.js';
import { acquireLock, type StoreLock } from '../lock.js';
import { chainOf } from '../lifecycle/held.js';
import { MemoryCatalog, type PackRef } from '../restore/catalog.js';
import { nodeStorage } from '../storage/node-storage.js';
import { joinPath, type Storage } from '../storage/storage.js';
import { TransactionIndex } from '../transactions/transactions.js';
import { ProductionWriter } from '../volumes/production-writer.js';
import { VolumeSet } from '../volumes/volume-set.js';
import { addDirtyRegions, cutExtents } from './dirty-regions.js';
import { recover } from './recovery.js';

export interface StoreOptions {
  storage?: Storage;
  clock?: Clock;
  /** Kernel pool workers (default: one per core). */
  threads?: number;
  limits?: Partial<Limits>;
  /** Close time-based windows on a timer (default: true with the system clock; tests call tick()). */
  autoTick?: boolean;
  /**
   * Carry out the retention policy by itself: after each applied window, on a policy change and (with
   * autoTick) every few seconds (default: true). Simulations turn it off and call Store.consolidate().
   */
  autoLifecycle?: boolean;
  onWarning?: (message: string) => void;
  /** How the writer's lock is taken (default: a pid file in the store). Simulations inject their own. */
  lock?: (dir: string) => StoreLock;
  /**
   * Write production volumes on a thread of their own (default: true). Only plain files are (the
   * storage gives their descriptor); other storage is always written on the event loop.
   */
  productionThread?: boolean;
  /** History files that must stay on disk, read before every lifecycle step (default: none). */
  historyHold?: () => HistoryHold;
}

/**
 * What the second tier's uploader has not shipped yet (src/tier/), which the lifecycle keeps: no pack
 * ending at or after `packsFrom` is dropped or merged, no journal segment ending at or after
 * `segmentsFrom` retired (Infinity: no hold).
 */
export interface HistoryHold {
  packsFrom: number;
  segmentsFrom: number;
}

/** Everything a writer opened, recovered and ready to be wired into a Store. */
export interface OpenedStore {
  dir: string;
  config: StoreConfig;
  storage: Storage;
  clock: Clock;
  lock: StoreLock;
  limits: Limits;
  volumes: VolumeSet;
  index: TransactionIndex;
  journal: Journal;
  pool: KernelPool;
  catalog: MemoryCatalog;
  /** The limits before the capacity narrowed them (`limits` is recomputed from these when it changes). */
  baseLimits: Limits;
  /** Packs a merge replaced before the last writer stopped: the lifecycle removes them once no reader may read them. */
  superseded: PackRef[];
  /** Null when production is written on the event loop. */
  productionWriter: ProductionWriter<RecordRef> | null;
  autoTick: boolean;
  autoLifecycle: boolean;
  historyHold?: () => HistoryHold;
  onWarning?: (message: string) => void;
}

/**
 * Opens and recovers the store at `dir`, then hands the parts and the journaled writes still to be
 * windowed (in seq order) to `wire`. Closes everything and releases the lock if opening or `wire` fails.
 */
export async function openWriter<T>(dir: string, opts: StoreOptions, wire: (parts: OpenedStore, unapplied: RecordRef[]) => T): Promise<T> {
  const storage = opts.storage ?? nodeStorage;
  const clock = opts.clock ?? systemClock;
  const config = readConfig(storage, dir);
  const baseLimits: Limits = { ...LIMITS, ...opts.limits };
  // One object, shared by everything that reads a limit, so a new capacity changes them in place.
  const limits: Limits = { ...limitsUnderCapacity(baseLimits, new HistoryFootprint(storage, dir).capacityBytes(config)) };
  const lock = (opts.lock ?? acquireLock)(dir);
  const opened: { close(): void | Promise<void> }[] = [];
  try {
    const volumes = new VolumeSet(storage, dir, config, true);
    opened.push(volumes);
    const index = await TransactionIndex.open(storage, joinPath(dir, 'index'), true);
    opened.push(index);
    const tail: RecordRef[] = [];
    // Records cut off the tail may have reached production: the dirty-region log notes where before the cut.
    const onCut = (bytes: Buffer | null) => {
      const cut = cutExtents(bytes);
      if (cut.all) opts.onWarning?.(`recovery: production will be rebuilt from the replica in full: ${cut.reason}`);
      return addDirtyRegions(storage, dir, cut);
    };
    const journal = await Journal.open(storage, joinPath(dir, 'journal'), { get segmentBytesMax() { return limits.segmentBytesMax; }, onWarning: opts.onWarning, onCut }, index.last?.journal, (r) => tail.push(r));
    opened.push({ close: () => journal.close() });
    if (journal.lastSeq < index.appliedSeq) {
      throw corrupt(joinPath(dir, 'journal'), 0, `journal ends at seq ${journal.lastSeq} but transactions are applied up to seq ${index.appliedSeq}`);
    }
    // The arena is sized for the configured windows, not the ones a capacity narrows them to: a larger
    // capacity set while the store is open lets windows grow back up to what it was sized for.
    const pool = new KernelPool({ threads: opts.threads, blockSize: config.blockSize, chunkBytes: limits.chunkBytes, windowBytesMax: baseLimits.windowBytesMax, windowWritesMax: baseLimits.windowWritesMax });
    opened.push({ close: () => pool.close() });
    const { catalog, superseded } = appliedCatalog(storage, joinPath(dir, 'increments'), index.appliedSeq);
    const replica = { storage, blockSize: config.blockSize, volumes, pool };
    const stop = { unclean: lock.unclean, sameBoot: lock.sameBoot ?? false };
    const unapplied = await recover({ dir, storage, volumes, index, journal, catalog, replica, onWarning: opts.onWarning }, tail, stop);
    let productionWriter: ProductionWriter<RecordRef> | null = null;
    if (opts.productionThread !== false && volumes.volumes.some((v) => v.production?.osFd !== undefined)) {
      const writer = (productionWriter = new ProductionWriter<RecordRef>());
      opened.push({ close: () => writer.terminate() });
    }
    const autoTick = opts.autoTick ?? clock === systemClock;
    return wire({ dir, config, storage, clock, lock, limits, volumes, index, journal, pool, catalog, productionWriter, autoTick, autoLifecycle: opts.autoLifecycle ?? true, historyHold: opts.historyHold, superseded, baseLimits, onWarning: opts.onWarning }, unapplied);
  } catch (err) {
    for (const o of opened.reverse()) {
      try {
        await o.close();
      } catch {
        // the original error is the one to report
      }
    }
    lock.release();
    throw err;
  }
}

/**
 * The chain of packs up to the applied point, and the packs a consolidation had merged but not yet
 * removed when the writer stopped (the merged pack holds the same points; a reader in another
 * process may still be reading them, so the lifecycle removes them, not the opening).
 */
function appliedCatalog(storage: Storage, incDir: string, appliedSeq: number): { catalog: MemoryCatalog; superseded: PackRef[] } {
  const files = listPacks(storage, incDir).map((p) => ({ firstSeq: p.firstSeq, lastSeq: p.lastSeq, path: joinPath(incDir, p.name) }));
  const { chain, superseded } = chainOf(files);
  const catalog = new MemoryCatalog();
  for (const p of chain) if (p.lastSeq <= appliedSeq) catalog.add(p);
  // Retirement removes the oldest packs first, so the chain, when there is one, reaches the applied point.
  const newest = catalog.packs().at(-1);
  if (newest && newest.lastSeq !== appliedSeq) {
    throw corrupt(incDir, 0, `transactions are applied up to seq ${appliedSeq} but the newest applied pack ends at seq ${newest.lastSeq}`);
  }
  return { catalog, superseded };
}

/**
 * Under a capacity, the history that cannot be retired at a given moment (the open journal segment, the
 * one recovery starts from, the journal of windows not applied yet, the packs being built) must fit well
 * inside it: journal segments and windows (and so single writes) are at most 1/32 of the capacity and
 * the replica-lag bound at most 1/8 (CAPACITY_SHARES). Store recomputes them when the capacity
 * changes (the kernel pool's arena is sized for the configured limits, so it holds any of these).
 */
export function limitsUnderCapacity(limits: Limits, capacity: number | null): Limits {
  if (capacity === null) return limits;
  const unit = Math.max(2 ** 20, Math.floor(capacity / CAPACITY_SHARES.window));
  const windowBytesMax = Math.min(limits.windowBytesMax, unit);
  return {
    ...limits,
    segmentBytesMax: Math.min(limits.segmentBytesMax, unit),
    windowBytesMax,
    writeBytesMax: Math.min(limits.writeBytesMax, windowBytesMax),
    pendingBytesMax: Math.min(limits.pendingBytesMax, Math.floor(capacity / CAPACITY_SHARES.pending)),
  };
}

/** A capacity divided by these gives the largest window (and segment) and the replica-lag bound. */
export const CAPACITY_SHARES = { window: 32, pending: 8 } as const;

/**
 * What the lifecycle keeps free below the capacity: the journal of windows not yet applied (up to
 * the lag bound) and the journal, forward and backward increments of a few windows more (a pass runs
 * after each applied window; in between, new windows add to history).
 */
export function capacityHeadroom(limits: Limits): number {
  return limits.pendingBytesMax + 4 * (limits.windowBytesMax + limits.segmentBytesMax);
}
