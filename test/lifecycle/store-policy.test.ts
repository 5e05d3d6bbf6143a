// The open store's retention policy and capacity: parsed once when the store opens, and changed only
// by reloadConfig() when rewind.json says something new about them. Other fields of rewind.json never
// change on an open store; a file that cannot be read keeps the policy as it was. Each complaint is
// reported once, however often the file is reloaded.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store, type LifecyclePolicy } from '../../src/index.js';

let dir: string;
let store: Store;
let warnings: string[];
const clock = new ManualClock(Date.UTC(2026, 0, 1));

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-policy-'));
  warnings = [];
  await initStore(dir, { volumes: [{ name: 'a', size: 1 << 20 }], window: 'count:4', retain: 'windows:24h,daily:30d', capacity: '1G', clock });
  store = await Store.open(dir, { clock, threads: 1, autoTick: false, onWarning: (m) => warnings.push(m) });
});

afterEach(async () => {
  await store?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const file = () => join(dir, 'rewind.json');
function editConfig(edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(readFileSync(file(), 'utf8'));
  edit(c);
  writeFileSync(file(), JSON.stringify(c, null, 2));
}

describe('Store policy', () => {
  it('is the one in rewind.json when the store opens', () => {
    expect(store.policy).toEqual({
      retain: [{ granularity: 'windows', ageMs: 86_400_000 }, { granularity: 'daily', ageMs: 30 * 86_400_000 }],
      capacity: { bytes: 2 ** 30 },
      spec: 'windows:1d,daily:30d',
      capacitySpec: String(2 ** 30),
    });
    expect(store.reloadConfig()).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('reloadConfig puts a new retention and capacity into effect, tells the listeners and logs it once', () => {
    const seen: LifecyclePolicy[] = [];
    const off = store.onPolicyChange((p) => seen.push(p));
    editConfig((c) => {
      c.retain = 'writes:1h,hourly:7d';
      c.capacity = '50%';
    });
    expect(store.reloadConfig()).toBe(true);
    expect(store.policy).toMatchObject({ spec: 'writes:1h,hourly:1w', capacity: { percent: 50 }, capacitySpec: '50%' });
    expect(store.config).toMatchObject({ retain: 'writes:1h,hourly:7d', capacity: '50%' });
    expect(seen).toEqual([store.policy]);
    expect(warnings).toEqual(['retention changed to writes:1h,hourly:1w, capacity 50%']);

    // The same file again, or the same policy written another way, is no change.
    expect(store.reloadConfig()).toBe(false);
    editConfig((c) => (c.retain = 'writes:60m,hourly:1w'));
    expect(store.reloadConfig()).toBe(false);
    expect(warnings).toHaveLength(1);

    // Back to the default: the fields are gone from the file and from the store's configuration.
    off();
    editConfig((c) => {
      delete c.retain;
      delete c.capacity;
    });
    expect(store.reloadConfig()).toBe(true);
    expect(store.policy).toEqual({ retain: [], capacity: null, spec: 'all', capacitySpec: null });
    expect(store.config).not.toHaveProperty('retain');
    expect(store.config).not.toHaveProperty('capacity');
    expect(warnings[1]).toBe('retention changed to all, capacity none');
    expect(seen).toHaveLength(1);
  });

  it('never changes the other fields of an open store: it says so once, and still applies retain and capacity', async () => {
    editConfig((c) => {
      c.window = 'time:5s';
      (c.volumes as { size: number }[])[0].size = 2 << 20;
      c.retain = 'windows:2d';
    });
    expect(store.reloadConfig()).toBe(true);
    expect(store.config.window).toBe('count:4');
    expect(store.config.volumes[0].size).toBe(1 << 20);
    expect(store.policy.spec).toBe('windows:2d');
    expect(warnings).toEqual([
      'rewind.json: window, volumes changed while the store is open; ignored (only retain and capacity change while serving)',
      'retention changed to windows:2d, capacity 1073741824',
    ]);
    expect(store.reloadConfig()).toBe(false);
    expect(warnings).toHaveLength(2);
    // The window policy in effect is still the one the store opened with: four writes close a window.
    for (let i = 0; i < 4; i++) await store.write('a', i * 4096, Buffer.alloc(4096, i + 1));
    await store.drain();
    expect(store.log()).toHaveLength(1);
  });

  it('keeps the policy when rewind.json is damaged, says so once, and picks up the repaired file', () => {
    const good = readFileSync(file());
    writeFileSync(file(), '{"format": "rewind-store", ');
    expect(store.reloadConfig()).toBe(false);
    expect(store.reloadConfig()).toBe(false);
    expect(store.policy.spec).toBe('windows:1d,daily:30d');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^rewind\.json cannot be read \(.*not valid JSON.*\); keeping retention windows:1d,daily:30d, capacity 1073741824$/);

    // A spec the parser refuses is damage too: reported (once), policy kept.
    const c = JSON.parse(good.toString('utf8'));
    writeFileSync(file(), JSON.stringify({ ...c, retain: 'weekly:30d' }));
    expect(store.reloadConfig()).toBe(false);
    expect(store.reloadConfig()).toBe(false);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/"weekly" is not one of/);
    expect(store.policy.spec).toBe('windows:1d,daily:30d');

    writeFileSync(file(), JSON.stringify({ ...c, retain: 'windows:12h' }));
    expect(store.reloadConfig()).toBe(true);
    expect(store.policy.spec).toBe('windows:12h');
    expect(warnings.slice(2)).toEqual(['retention changed to windows:12h, capacity 1073741824']);
  });

  it('does nothing once the store is closed', async () => {
    await store.close();
    editConfig((c) => (c.retain = 'windows:2d'));
    expect(store.reloadConfig()).toBe(false);
    expect(store.policy.spec).toBe('windows:1d,daily:30d');
  });
});
