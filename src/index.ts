// rewind as a library: the public API.
export { Store, initStore, type StoreOptions, type InitOptions } from './store.js';
export { openStoreReader, type StoreReader } from './reader.js';
export { History, type StatusReport, type LogEntry, type Progress } from './restore/history.js';
export { PointInTimeView } from './restore/view.js';
export type { Target } from './restore/target.js';
export { RewindError, type RewindErrorCode } from './errors.js';
export { ManualClock, systemClock, type Clock } from './clock.js';
export { LIMITS, type Limits } from './limits.js';
export type { Storage, StorageFile } from './storage/storage.js';
export { NodeStorage, nodeStorage } from './storage/node-storage.js';
export type { StoreConfig, VolumeConfig } from './config.js';
