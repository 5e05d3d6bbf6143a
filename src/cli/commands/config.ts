// `rewind config`: shows or changes a store's retention policy and capacity. It takes no lock: it
// rewrites rewind.json atomically (only those two fields), so it works while `rewind serve` runs on
// the store, which picks the change up within a few seconds.
import { statfsSync } from 'node:fs';
import type { Io } from '../io.js';
import { readConfig, writeConfig, type StoreConfig } from '../../config.js';
import { capacityBytes } from '../../lifecycle/capacity.js';
import { lifecyclePolicy, withLifecycle } from '../../lifecycle/policy.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { formatBytes } from '../../units.js';
import { EXIT } from '../exit-codes.js';

export interface ConfigOptions {
  retain?: string;
  capacity?: string;
  json?: boolean;
}

/** What `rewind config --json` prints. */
export interface ConfigReport {
  retain: string;
  capacity: string | null;
  /** The capacity in bytes, a share resolved against the size of the store's file system. */
  capacityBytes: number | null;
}

export async function configCommand(io: Io, store: string, opts: ConfigOptions): Promise<number> {
  const change = { retain: opts.retain, capacity: opts.capacity };
  // Bad specs are refused before the store is looked at (nothing changes).
  lifecyclePolicy({ retain: change.retain, capacity: change.capacity });
  let config: StoreConfig = readConfig(nodeStorage, store);
  if (change.retain !== undefined || change.capacity !== undefined) {
    config = withLifecycle(config, change);
    await writeConfig(nodeStorage, store, config);
  }
  const report = configReport(store, config);
  if (opts.json) io.out(JSON.stringify(report) + '\n');
  else {
    const bytes = report.capacityBytes === null ? '' : ` (${formatBytes(report.capacityBytes)})`;
    io.out(`retain   ${report.retain}\ncapacity ${report.capacity ?? 'none'}${bytes}\n`);
  }
  return EXIT.OK;
}

export function configReport(store: string, config: StoreConfig): ConfigReport {
  const policy = lifecyclePolicy(config);
  const needsFs = policy.capacity !== null && 'percent' in policy.capacity;
  return {
    retain: policy.spec,
    capacity: policy.capacitySpec,
    capacityBytes: capacityBytes(policy.capacity, needsFs ? fileSystemBytes(store) : 0),
  };
}

/** Size of the file system the store lives on. */
function fileSystemBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.blocks * s.bsize;
}
