// rewind as a library: the public API.
export { Store, type StoreOptions } from './store/store.js';
export { initStore, type InitOptions } from './store/init.js';
export { openStoreReader, type StoreReader } from './store/reader.js';
export type { StatusReport } from './store/status.js';
export type { LogEntry, PointGranularity } from './store/log.js';
export { History, type Progress } from './restore/history.js';
export { PointInTimeView } from './restore/view.js';
export { rollbackProduction, type RollbackRequest, type RollbackResult, type VolumeRollback } from './recovery-ops/rollback-production.js';
export type { Target } from './restore/target.js';
export { RewindError, type RewindErrorCode } from './errors.js';
export { ManualClock, systemClock, type Clock } from './clock.js';
export { LIMITS, type Limits } from './limits.js';
export type { Storage, StorageFile } from './storage/storage.js';
export { NodeStorage, nodeStorage } from './storage/node-storage.js';
export type { StoreConfig, VolumeConfig } from './config.js';
export type { LifecyclePolicy } from './lifecycle/policy.js';
