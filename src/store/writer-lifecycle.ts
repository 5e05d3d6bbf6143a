// The history lifecycle of an open writer, wired to the store's parts: its directories, pool, catalog
// and index, the retention policy and capacity in effect (both may change while it runs), the
// points readers in other processes and clones hold, and what the second tier still needs.
import { HistoryFootprint } from '../lifecycle/footprint.js';
import type { PointHold } from '../lifecycle/holds.js';
import { LeaseFiles } from '../lifecycle/leases.js';
import type { RetentionPolicy } from '../lifecycle/retention.js';
import type { Limits } from '../limits.js';
import { joinPath } from '../storage/storage.js';
import { HistoryLifecycle } from './lifecycle.js';
import { capacityHeadroom, type HistoryHold, type OpenedStore } from './open.js';

/** Nothing held for the second tier (a store without one). */
const NO_HOLD: HistoryHold = { packsFrom: Infinity, segmentsFrom: Infinity };

export interface WriterPolicy {
  retain(): RetentionPolicy;
  capacityBytes(): number | null;
  cloneHolds(): PointHold[];
  /** The live limits (they follow the capacity). */
  limits: Limits;
}

export function writerLifecycle(o: OpenedStore, p: WriterPolicy): HistoryLifecycle {
  const leaseFiles = new LeaseFiles(o.storage, o.dir);
  return new HistoryLifecycle({
    storage: o.storage, incrementsDir: joinPath(o.dir, 'increments'), journalDir: joinPath(o.dir, 'journal'), blockSize: o.config.blockSize,
    pool: o.pool, catalog: o.catalog, index: o.index, journal: o.journal, clock: o.clock,
    retention: p.retain, onWarning: o.onWarning,
    // Its own footprint: it measures afresh each pass, and must not age the status's cached figure.
    footprint: new HistoryFootprint(o.storage, o.dir), capacityBytes: p.capacityBytes,
    externalLeases: () => leaseFiles.points(),
    cloneHolds: p.cloneHolds,
    hold: o.historyHold ?? (() => NO_HOLD),
    indexCompactEntriesMin: o.limits.indexCompactEntriesMin,
    headroomBytes: (cap) => Math.min(cap / 2, capacityHeadroom(p.limits)),
  }, o.superseded);
}
