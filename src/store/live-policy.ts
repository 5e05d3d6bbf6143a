// The open store's lifecycle policy (retention and capacity), held in memory and reloaded from
// rewind.json on request: `rewind config` rewrites the file while a writer runs, and the writer
// (`rewind serve`) calls reload() every few seconds. Only retain and capacity change live; any other
// field that differs is reported and left as the store was opened with. A file that cannot be read
// leaves the policy as it was. Each distinct complaint is reported once, not at every reload.
import { CONFIG_FILE, readConfig, type StoreConfig } from '../config.js';
import { lifecyclePolicy, type LifecyclePolicy } from '../lifecycle/policy.js';
import type { Storage } from '../storage/storage.js';

export type PolicyListener = (policy: LifecyclePolicy) => void;

/** Fields rewind.json may change while the store is open. */
const LIVE_FIELDS: ReadonlySet<string> = new Set(['retain', 'capacity']);

export class LivePolicy {
  private policy: LifecyclePolicy;
  private readonly listeners = new Set<PolicyListener>();
  /** The last complaint reported, so a file left as it is does not repeat it every reload. */
  private lastComplaint: string | null = null;

  /** `config` is the open store's configuration object: its retain and capacity follow reloads. */
  constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    private readonly config: StoreConfig,
    private readonly onWarning: (message: string) => void = () => {},
  ) {
    this.policy = lifecyclePolicy(config);
  }

  get current(): LifecyclePolicy {
    return this.policy;
  }

  /** Registers a listener called after each change; returns a function that removes it. */
  onChange(listener: PolicyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads rewind.json again; true when retention or capacity changed (and are now in effect). */
  reload(): boolean {
    let next: StoreConfig;
    try {
      next = readConfig(this.storage, this.dir);
    } catch (err) {
      this.complain(`${CONFIG_FILE} cannot be read (${(err as Error).message}); keeping retention ${this.describe(this.policy)}`);
      return false;
    }
    const fixed = changedFixedFields(this.config, next);
    if (fixed.length > 0) {
      this.complain(`${CONFIG_FILE}: ${fixed.join(', ')} changed while the store is open; ignored (only retain and capacity change while serving)`);
    } else {
      this.lastComplaint = null;
    }
    const policy = lifecyclePolicy(next);
    if (policy.spec === this.policy.spec && policy.capacitySpec === this.policy.capacitySpec) return false;
    this.policy = policy;
    setOrDelete(this.config, 'retain', next.retain);
    setOrDelete(this.config, 'capacity', next.capacity);
    this.onWarning(`retention changed to ${this.describe(policy)}`);
    for (const listener of [...this.listeners]) {
      try {
        listener(policy);
      } catch (err) {
        this.onWarning(`a listener of retention changes failed: ${(err as Error).message}`);
      }
    }
    return true;
  }

  private describe(p: LifecyclePolicy): string {
    return `${p.spec}, capacity ${p.capacitySpec ?? 'none'}`;
  }

  private complain(message: string): void {
    if (message === this.lastComplaint) return;
    this.lastComplaint = message;
    this.onWarning(message);
  }
}

/** Names of the fields other than retain and capacity whose values differ between `a` and `b`. */
function changedFixedFields(a: StoreConfig, b: StoreConfig): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const ra = a as unknown as Record<string, unknown>;
  const rb = b as unknown as Record<string, unknown>;
  return [...keys].filter((k) => !LIVE_FIELDS.has(k) && JSON.stringify(ra[k]) !== JSON.stringify(rb[k]));
}

function setOrDelete(config: StoreConfig, field: 'retain' | 'capacity', value: string | undefined): void {
  if (value === undefined) delete config[field];
  else config[field] = value;
}
