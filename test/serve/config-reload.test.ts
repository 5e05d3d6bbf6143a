// `rewind config` on a store that `rewind serve` is running on: it does not need the writer's lock,
// and the server picks the new retention and capacity up within a few seconds, saying so on stderr.
// A hand edit of a field that cannot change live is reported once and not applied.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { initStore, ok, removeTempDirs, rewind, startServe, status, stopAll, tempDir } from './harness.js';

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

/** Serve reloads every 2 s; a loaded machine gets far more than that. */
const PICKUP_WAIT_MS = 20_000;

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('rewind config while rewind serve runs', () => {
  it('changes the policy, and serve logs the change within a few seconds', async () => {
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:16M');
    const srv = await startServe(store);

    const shown = JSON.parse(ok(await rewind(['config', store, '--json'])).stdout);
    expect(shown).toEqual({ retain: 'all', capacity: null, capacityBytes: null });

    const set = ok(await rewind(['config', store, '--retain', 'writes:1h,windows:24h,hourly:7d', '--capacity', '1G']));
    expect(set.stdout).toContain('retain   writes:1h,windows:1d,hourly:1w');
    const line = 'rewind: retention changed to writes:1h,windows:1d,hourly:1w, capacity 1073741824';
    await until(() => srv.stderr().includes(line), { waitMs: PICKUP_WAIT_MS, what: 'serve logs the new retention', state: () => srv.stderr() });

    // A bad spec changes nothing, for the file and for the server.
    const bad = await rewind(['config', store, '--retain', 'daily:1d,hourly:2d']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/terms go finest first/);

    // Back to keeping everything.
    ok(await rewind(['config', store, '--retain', 'all', '--capacity', 'none']));
    await until(() => srv.stderr().includes('rewind: retention changed to all, capacity none'), { waitMs: PICKUP_WAIT_MS, what: 'serve logs the default again', state: () => srv.stderr() });
    expect(count(srv.stderr(), 'retention changed to')).toBe(2);

    // The server went on serving, and closes cleanly.
    expect((await status(store)).volumes).toEqual([{ name: 'disk0', size: 16 * 2 ** 20 }]);
    expect(await srv.stop()).toEqual({ code: 0, signal: null });
    expect(srv.stderr()).toMatch(/closed cleanly\s*$/);
  });

  it('reports a changed window once, and does not apply it', async () => {
    const store = path.join(tempDir(), 'store');
    await initStore(store, 'disk0:16M', 'count:50');
    const srv = await startServe(store);
    const file = path.join(store, 'rewind.json');
    const c = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...c, window: 'time:1s', retain: 'windows:2d' }));
    await until(() => srv.stderr().includes('retention changed to windows:2d, capacity none'), { waitMs: PICKUP_WAIT_MS, what: 'serve logs the new retention', state: () => srv.stderr() });
    const complaint = 'rewind: rewind.json: window changed while the store is open; ignored';
    expect(srv.stderr()).toContain(complaint);
    // A later change is picked up too, with the complaint not repeated in between.
    ok(await rewind(['config', store, '--retain', 'windows:3d']));
    await until(() => srv.stderr().includes('retention changed to windows:3d, capacity none'), { waitMs: PICKUP_WAIT_MS, what: 'serve logs the second change', state: () => srv.stderr() });
    expect(count(srv.stderr(), complaint)).toBe(1);
    expect(await srv.stop()).toEqual({ code: 0, signal: null });
  });
});
