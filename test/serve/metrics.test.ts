// `rewind serve --metrics HOST:PORT`: Prometheus text at /metrics (404 elsewhere) with the store's
// protection figures, its write counters and the process metrics; a non-loopback address is refused
// without --insecure (exit 2), like --listen. The real bin runs as a child; writes go through NBD.

import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readConfig, writeConfig } from '../../src/config.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import { GiB, initStore, ok, removeTempDirs, rewind, run, startServe, status, stopAll, tempDir, uri } from './harness.js';

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

interface Sample {
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Map<string, Sample[]>;
}

/** Parses the Prometheus text exposition format: `# HELP`/`# TYPE` lines and `name{labels} value [timestamp]` samples. */
function parseExposition(text: string): Exposition {
  const out: Exposition = { types: new Map(), help: new Map(), samples: new Map() };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? out.help : out.types).set(meta[2], meta[3]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (!out.samples.has(m[1])) out.samples.set(m[1], []);
    out.samples.get(m[1])!.push({ labels, value });
  }
  return out;
}

/** The one sample of `name` whose labels include `labels`. */
function sample(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = (e.samples.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found, `${name}${JSON.stringify(labels)} in ${[...e.samples.keys()].join(', ')}`).toHaveLength(1);
  return found[0].value;
}

async function scrape(url: string): Promise<{ res: Response; text: string; metrics: Exposition }> {
  const res = await fetch(url);
  const text = await res.text();
  return { res, text, metrics: parseExposition(text) };
}

describe('rewind serve --metrics', () => {
  it('serves the protection figures, write counters and process metrics as Prometheus text at /metrics', async (ctx) => {
    if (!requireTool('qemu-io')) ctx.skip();
    const dir = tempDir();
    const store = path.join(dir, 's');
    await initStore(store, 'disk0:8M', 'count:50');
    await writeConfig(nodeStorage, store, { ...readConfig(nodeStorage, store), retain: 'writes:1h,daily:7d', capacity: '1G' });
    const srv = await startServe(store, ['--metrics', '127.0.0.1:0']);
    const m = /rewind: metrics on (http:\/\/127\.0\.0\.1:(\d+)\/metrics)/.exec(srv.stderr());
    expect(m, srv.stderr()).not.toBeNull();
    const url = m![1];

    const before = Date.now() / 1000;
    const writes: [number, number][] = [[0, 64 * 1024], [1024 * 1024, 4096], [2 * 1024 * 1024, 512]];
    ok(await run('qemu-io', ['-f', 'raw', ...writes.flatMap(([off, len]) => ['-c', `write -P 0x5a ${off} ${len}`]), uri(srv.port, 'disk0')]));
    const written = writes.reduce((n, [, len]) => n + len, 0);

    let got!: Awaited<ReturnType<typeof scrape>>;
    await until(async () => {
      got = await scrape(url);
      return (got.metrics.samples.get('rewind_writes_total') ?? []).some((s) => s.labels.volume === 'disk0' && s.value === writes.length);
    }, { what: `rewind_writes_total{volume="disk0"} = ${writes.length}`, state: () => got?.text.split('\n').filter((l) => l.startsWith('rewind_')).join('; ') ?? '' });
    const { res, metrics } = got;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);

    const types: Record<string, string> = {
      rewind_protection_window_seconds: 'gauge', rewind_oldest_restorable_timestamp_seconds: 'gauge', rewind_history_bytes: 'gauge',
      rewind_history_capacity_bytes: 'gauge', rewind_replica_lag_seconds: 'gauge', rewind_replica_lag_bytes: 'gauge',
      rewind_consolidation_backlog_bytes: 'gauge', rewind_writes_total: 'counter', rewind_written_bytes_total: 'counter',
      rewind_last_write_timestamp_seconds: 'gauge', rewind_consolidation_read_bytes_total: 'counter',
      rewind_consolidation_written_bytes_total: 'counter',
    };
    for (const [name, type] of Object.entries(types)) {
      expect(metrics.types.get(name), name).toBe(type);
      expect(metrics.help.get(name)?.length, name).toBeGreaterThan(0);
      for (const s of metrics.samples.get(name) ?? []) expect(Number.isFinite(s.value), `${name} ${JSON.stringify(s)}`).toBe(true);
    }

    const now = Date.now() / 1000;
    const st = await status(store);
    const createdAt = Date.parse((st as unknown as { createdAt: string }).createdAt) / 1000;
    expect(sample(metrics, 'rewind_protection_window_seconds', { kind: 'required' })).toBe(3600);
    const achieved = sample(metrics, 'rewind_protection_window_seconds', { kind: 'achieved' });
    expect(achieved).toBeGreaterThan(0);
    expect(achieved).toBeLessThanOrEqual(now - createdAt + 1);
    expect(sample(metrics, 'rewind_protection_window_seconds', { kind: 'predicted' })).toBeGreaterThan(0);
    expect(sample(metrics, 'rewind_oldest_restorable_timestamp_seconds')).toBeCloseTo(createdAt, 3);
    expect(sample(metrics, 'rewind_history_bytes')).toBeGreaterThan(written);
    expect(sample(metrics, 'rewind_history_capacity_bytes')).toBe(GiB);
    // count:50 does not close a window of three writes: all of them wait to be applied.
    expect(sample(metrics, 'rewind_replica_lag_bytes')).toBe(written);
    expect(sample(metrics, 'rewind_replica_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(metrics, 'rewind_replica_lag_seconds')).toBeLessThanOrEqual(now - before + 1);
    expect(sample(metrics, 'rewind_consolidation_backlog_bytes')).toBe(0);
    expect(sample(metrics, 'rewind_writes_total', { volume: 'disk0' })).toBe(writes.length);
    expect(sample(metrics, 'rewind_written_bytes_total', { volume: 'disk0' })).toBe(written);
    // No window applied yet, so nothing to consolidate.
    expect(sample(metrics, 'rewind_consolidation_read_bytes_total')).toBe(0);
    expect(sample(metrics, 'rewind_consolidation_written_bytes_total')).toBe(0);
    const last = sample(metrics, 'rewind_last_write_timestamp_seconds');
    expect(last).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    expect(last).toBeLessThanOrEqual(now + 1);
    // prom-client's default process metrics.
    expect(metrics.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(metrics.samples.get('process_cpu_user_seconds_total')?.[0].value).toBeGreaterThan(0);
    expect(metrics.samples.has('nodejs_heap_size_used_bytes')).toBe(true);

    const other = await fetch(url.replace(/\/metrics$/, '/'));
    expect(other.status).toBe(404);
    await other.text();

    expect(await srv.stop()).toEqual({ code: 0, signal: null });
    expect(srv.stderr()).toMatch(/closed cleanly\s*$/);
  });

  it('refuses a non-loopback --metrics address without --insecure (exit 2), like --listen', async () => {
    const dir = tempDir();
    const store = path.join(dir, 's');
    await initStore(store, 'disk0:8M');
    const r = await rewind(['serve', store, '--listen', '127.0.0.1:0', '--metrics', '0.0.0.0:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--metrics 0.0.0.0:1 is not a loopback address');
    expect(r.stderr).toContain('--insecure');
    const bad = await rewind(['serve', store, '--listen', '127.0.0.1:0', '--metrics', 'nonsense']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--metrics "nonsense" must be HOST:PORT');
  });
});
