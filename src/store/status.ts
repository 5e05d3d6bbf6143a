// What a store reports about itself: status (newest write, applied point, volumes, configuration)
// and the transaction log, one entry per applied window. The writer (`store.status()`) and readers
// in other processes (`reader.status()`, the CLI) build them the same way.
import type { StoreConfig } from '../config.js';
import type { TransactionIndex, TxEntry } from '../transactions/transactions.js';
import { isoTime } from '../units.js';
import type { VolumeSet } from '../volumes/volume-set.js';

export interface StatusReport {
  lastSeq: number;
  lastTime: string | null;
  appliedSeq: number;
  transactions: number;
  volumes: { name: string; size: number }[];
  blockSize: number;
  window: string;
  createdAt: string;
}

export interface LogEntry {
  id: number;
  firstSeq: number;
  lastSeq: number;
  t1: string;
  t2: string;
  writes: number;
  bytesWritten: number;
  changedBlocks: number;
  forwardBytes: number;
  backwardBytes: number;
  packBytes: number;
}

/** Where the newest write and the applied point are read (a reader refreshes its index in appliedSeq). */
export interface StatusState {
  lastSeq(): number;
  lastTime(): number;
  appliedSeq(): number;
}

export interface StatusSource {
  config: StoreConfig;
  volumes: VolumeSet;
  index: TransactionIndex;
  state: StatusState;
}

export function statusReport({ config, volumes, index, state }: StatusSource): StatusReport {
  const lastTime = state.lastTime();
  return {
    lastSeq: state.lastSeq(),
    lastTime: state.lastSeq() > 0 ? isoTime(lastTime) : null,
    appliedSeq: state.appliedSeq(),
    transactions: index.entries.length,
    volumes: volumes.volumes.map((v) => ({ name: v.name, size: v.size })),
    blockSize: config.blockSize,
    window: config.window,
    createdAt: config.createdAt,
  };
}

/** Every applied transaction, oldest first. */
export function transactionLog(index: TransactionIndex): LogEntry[] {
  return index.entries.map(logEntry);
}

export function logEntry(e: TxEntry): LogEntry {
  return {
    id: e.id, firstSeq: e.firstSeq, lastSeq: e.lastSeq, t1: isoTime(e.t1), t2: isoTime(e.t2), writes: e.writes,
    bytesWritten: e.bytesWritten, changedBlocks: e.changedBlocks, forwardBytes: e.fwdBytes, backwardBytes: e.bwdBytes, packBytes: e.packBytes,
  };
}
