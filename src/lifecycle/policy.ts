// A store's lifecycle policy as the engine holds it: the retention policy and the capacity, parsed,
// with their specs in normal form. Also how rewind.json carries them: in normal form, and absent when
// they say "keep everything" / "no bound", so a store that never set them and one set back to the
// default read the same.
import type { StoreConfig } from '../config.js';
import { formatCapacity, parseCapacity, type Capacity } from './capacity.js';
import { formatRetention, parseRetention, type RetentionPolicy } from './retention.js';

export interface LifecyclePolicy {
  retain: RetentionPolicy;
  /** Null: no bound but the file system's. */
  capacity: Capacity | null;
  /** The retention spec in normal form (`all` keeps everything). */
  spec: string;
  /** The capacity in normal form (bytes, or `N%`), null for none. */
  capacitySpec: string | null;
}

/** The policy a configuration names (throws BAD_ARGUMENT on a bad spec). */
export function lifecyclePolicy(config: Pick<StoreConfig, 'retain' | 'capacity'>): LifecyclePolicy {
  const retain = parseRetention(config.retain ?? 'all');
  const capacity = parseCapacity(config.capacity ?? 'none');
  return { retain, capacity, spec: formatRetention(retain), capacitySpec: capacity === null ? null : formatCapacity(capacity) };
}

export interface LifecycleChange {
  /** A retention spec; `all` returns to keeping everything. */
  retain?: string;
  /** A size, `N%`, or `none`. */
  capacity?: string;
}

/**
 * The configuration with `change` applied, both fields in normal form (absent for `all` / `none`).
 * Every spec is checked before anything is returned; `config` itself is not changed.
 */
export function withLifecycle(config: StoreConfig, change: LifecycleChange): StoreConfig {
  const next = lifecyclePolicy({
    retain: change.retain ?? config.retain,
    capacity: change.capacity ?? config.capacity,
  });
  const out: StoreConfig = { ...config };
  delete out.retain;
  delete out.capacity;
  if (next.retain.length > 0) out.retain = next.spec;
  if (next.capacitySpec !== null) out.capacity = next.capacitySpec;
  return out;
}
