// What a store reports about itself: status (newest write, applied point, volumes, configuration,
// and the protection it gives: history held, capacity, oldest restorable point, replica lag). The
// writer (`store.status()`) and readers in other processes (`reader.status()`, the CLI) build it the
// same way. The transaction log is log.ts.
import type { StoreConfig } from '../config.js';
import type { HistoryFootprint } from '../lifecycle/footprint.js';
import { consolidationBacklogBytes, growthBytesPerSecond, oldestRestorable, oldestWriteHeld, protectionFigures, type ProtectionFigures } from '../lifecycle/protection.js';
import { holdsPastPolicy } from '../lifecycle/holds.js';
import { heldPacks, parseRetention, planRetention, writesAgeMs, type RetentionPolicy } from '../lifecycle/retention.js';
import type { Catalog } from '../restore/catalog.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import { isoTime } from '../units.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import type { UnappliedWrites } from './unapplied.js';

export interface StatusReport {
  lastSeq: number;
  lastTime: string | null;
  appliedSeq: number;
  transactions: number;
  volumes: { name: string; size: number }[];
  blockSize: number;
  window: string;
  createdAt: string;
  /** The retention spec (`all` when none is set). */
  retention: string;
  /** The capacity in bytes (a share of the file system resolved against its size); null when none. */
  capacityBytes: number | null;
  /** Bytes of the files under journal/, increments/ and index/. */
  historyBytes: number;
  /** The oldest point a restore or view can reach. */
  oldestRestorable: { seq: number; time: string };
  protection: ProtectionFigures;
  /** Writes captured but not applied to the replica yet; seconds since the oldest of them (0: none). */
  replicaLag: { writes: number; bytes: number; seconds: number };
  /** Bytes of packs waiting to be consolidated. */
  consolidationBacklogBytes: number;
  /** The clones and the points they hold; heldPastPolicy: the clone keeps history the policy would retire. */
  clones: { name: string; volume: string; seq: number; heldPastPolicy: boolean }[];
}

/** Where the newest write and the applied point are read (a reader refreshes its index in appliedSeq). */
export interface StatusState {
  lastSeq(): number;
  lastTime(): number;
  appliedSeq(): number;
  now(): number;
}

export interface StatusSource {
  /** Read at every report: retention and capacity may be changed while the store is open. */
  config(): StoreConfig;
  volumes: VolumeSet;
  index: TransactionIndex;
  state: StatusState;
  catalog: Catalog;
  footprint: HistoryFootprint;
  unapplied: UnappliedWrites;
  /** The first write the journal still holds (older segments retired). */
  journalFirstSeq(): number;
  /** The clones (src/clones/clone-record.ts), read at every report. */
  clones(): { name: string; volume: string; seq: number }[];
}

/** The clones, each saying whether it keeps history the retention plan would retire now. */
function clonesReport(src: StatusSource, policy: RetentionPolicy, now: number, appliedSeq: number): StatusReport['clones'] {
  const clones = src.clones();
  if (clones.length === 0) return [];
  const applied = src.catalog.packs().filter((p) => p.lastSeq <= appliedSeq);
  const plan = planRetention(policy, now, heldPacks(applied, src.index.entries));
  const past = new Set(holdsPastPolicy(clones, plan, applied, appliedSeq).map((h) => h.name));
  return clones.map((c) => ({ name: c.name, volume: c.volume, seq: c.seq, heldPastPolicy: past.has(c.name) }));
}

export function statusReport(src: StatusSource): StatusReport {
  const { volumes, index, state } = src;
  const config = src.config();
  const now = state.now();
  const lastSeq = state.lastSeq();
  const appliedSeq = state.appliedSeq();
  const createdAtMs = Date.parse(config.createdAt);
  const policy = parseRetention(config.retain ?? 'all');
  const capacityBytes = src.footprint.capacityBytes(config);
  const packs = src.catalog.packs();
  const oldest = oldestRestorable(packs, index.entries, appliedSeq, createdAtMs);
  // Achieved protection is measured at the granularity the required one speaks of: single writes
  // when the policy promises them, any point otherwise.
  const oldestForPolicy = writesAgeMs(policy) > 0 ? oldestWriteHeld(packs, src.journalFirstSeq(), index.entries, appliedSeq, createdAtMs) : oldest;
  const growth = growthBytesPerSecond(index.entries, (since) => src.unapplied.journalBytesSince(appliedSeq, since), now, createdAtMs);
  const lag = src.unapplied.lag(appliedSeq);
  return {
    lastSeq,
    lastTime: lastSeq > 0 ? isoTime(state.lastTime()) : null,
    appliedSeq,
    // Transactions ever applied (the newest id), though the index keeps only those of held history.
    transactions: index.last?.id ?? 0,
    volumes: volumes.volumes.map((v) => ({ name: v.name, size: v.size })),
    blockSize: config.blockSize,
    window: config.window,
    createdAt: config.createdAt,
    retention: config.retain?.trim() || 'all',
    capacityBytes,
    historyBytes: src.footprint.historyBytes(),
    oldestRestorable: { seq: oldest.seq, time: isoTime(oldest.time) },
    protection: protectionFigures(policy, now, oldestForPolicy, capacityBytes, growth),
    replicaLag: { writes: lag.writes, bytes: lag.bytes, seconds: lag.oldestTime === null ? 0 : Math.max(0, now - lag.oldestTime) / 1000 },
    consolidationBacklogBytes: consolidationBacklogBytes(policy, now, packs, index.entries, appliedSeq),
    clones: clonesReport(src, policy, now, appliedSeq),
  };
}
