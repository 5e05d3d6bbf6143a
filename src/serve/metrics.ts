// `rewind serve --metrics`: the store's protection figures and write counters as Prometheus text at
// /metrics over HTTP, with the process metrics prom-client collects by default. The engine knows
// nothing of this: it gives a status report and its write counts through MetricsSource, read once
// per scrape, and every metric takes its value from that one snapshot.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { StatusReport } from '../store/status.js';

export interface MetricsSource {
  status(): StatusReport;
  writeCounts(): { volume: string; writes: number; bytes: number }[];
  consolidatedBytes(): { readBytes: number; writtenBytes: number };
  /** The second tier's shipping figures (absent or null: no tier set up). */
  tier?(): TierFigures | null;
}

/** What the tier's uploader reports (src/tier/uploader.ts). */
export interface TierFigures {
  backlogBytes: number;
  oldestUnshippedSeq: number | null;
  packsThrough: number;
  uploadedBytes: number;
  failedPasses: number;
}

interface Snapshot {
  status: StatusReport;
  writes: ReturnType<MetricsSource['writeCounts']>;
  consolidated: ReturnType<MetricsSource['consolidatedBytes']>;
  tier: TierFigures | null;
}

/** A registry of its own with the rewind metrics, each computed at scrape time from `snapshot()`. */
export function rewindRegistry(snapshot: () => Snapshot): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const gauge = (name: string, help: string, value: (s: StatusReport) => number | null) =>
    new Gauge({
      name,
      help,
      registers: [register],
      collect() {
        const v = value(snapshot().status);
        // A figure that does not exist (no capacity, no write yet) has no sample rather than a made-up one.
        if (v === null) this.remove();
        else this.set(v);
      },
    });
  new Gauge({
    name: 'rewind_protection_window_seconds',
    help: 'How far back the history reaches: required by the retention policy, achieved now, predicted at the recent write rate (no sample when the figure does not apply)',
    labelNames: ['kind'],
    registers: [register],
    collect() {
      this.reset();
      const p = snapshot().status.protection;
      if (p.requiredSeconds !== null) this.set({ kind: 'required' }, p.requiredSeconds);
      this.set({ kind: 'achieved' }, p.achievedSeconds);
      if (p.predictedSeconds !== null) this.set({ kind: 'predicted' }, p.predictedSeconds);
    },
  });
  gauge('rewind_oldest_restorable_timestamp_seconds', 'Time of the oldest point a restore or view can reach (Unix seconds)', (s) => Date.parse(s.oldestRestorable.time) / 1000);
  gauge('rewind_history_bytes', 'Bytes of history files (journal, increments, index)', (s) => s.historyBytes);
  gauge('rewind_history_capacity_bytes', 'Bytes history may take (no sample when no capacity is set)', (s) => s.capacityBytes);
  gauge('rewind_replica_lag_seconds', 'Age of the oldest write captured but not applied to the replica (0: none)', (s) => s.replicaLag.seconds);
  gauge('rewind_replica_lag_bytes', 'Bytes written by writes captured but not applied to the replica', (s) => s.replicaLag.bytes);
  gauge('rewind_consolidation_backlog_bytes', 'Bytes of packs waiting to be consolidated', (s) => s.consolidationBacklogBytes);
  gauge('rewind_last_write_timestamp_seconds', 'Time of the newest write (Unix seconds; no sample before the first)', (s) => (s.lastTime === null ? null : Date.parse(s.lastTime) / 1000));
  const counter = (name: string, help: string, value: (w: Snapshot['writes'][number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['volume'],
      registers: [register],
      collect() {
        // The engine keeps the running totals; the counter shows them as they are.
        this.reset();
        for (const w of snapshot().writes) this.inc({ volume: w.volume }, value(w));
      },
    });
  counter('rewind_writes_total', 'Writes captured per volume since rewind serve started', (w) => w.writes);
  counter('rewind_written_bytes_total', 'Bytes written per volume since rewind serve started', (w) => w.bytes);
  const total = (name: string, help: string, value: (c: Snapshot['consolidated']) => number) =>
    new Counter({
      name,
      help,
      registers: [register],
      collect() {
        this.reset();
        this.inc(value(snapshot().consolidated));
      },
    });
  total('rewind_consolidation_read_bytes_total', 'Bytes of packs read by consolidation merges since rewind serve started', (c) => c.readBytes);
  total('rewind_consolidation_written_bytes_total', 'Bytes of merged packs written by consolidation since rewind serve started', (c) => c.writtenBytes);
  // The second tier: no sample without one.
  const tier = (name: string, help: string, kind: 'gauge' | 'counter', value: (t: TierFigures) => number | null) => {
    const collect = function (this: Gauge | Counter) {
      const t = snapshot().tier;
      const v = t === null ? null : value(t);
      if (v === null) {
        this.remove();
        return;
      }
      if (this instanceof Gauge) this.set(v);
      else {
        this.reset();
        this.inc(v);
      }
    };
    return kind === 'gauge' ? new Gauge({ name, help, registers: [register], collect }) : new Counter({ name, help, registers: [register], collect });
  };
  tier('rewind_tier_backlog_bytes', 'Bytes of history (packs, sealed journal segments) not shipped to the second tier yet', 'gauge', (t) => t.backlogBytes);
  tier('rewind_tier_oldest_unshipped_seq', 'First write of the oldest history file not shipped to the tier (no sample when none waits)', 'gauge', (t) => t.oldestUnshippedSeq);
  tier('rewind_tier_shipped_seq', 'Every pack ending at or before this seq is in the tier', 'gauge', (t) => t.packsThrough);
  tier('rewind_tier_uploaded_bytes_total', 'Bytes uploaded to the tier since rewind serve started', 'counter', (t) => t.uploadedBytes);
  tier('rewind_tier_failed_passes_total', 'Shipping passes that failed (and were retried) since rewind serve started', 'counter', (t) => t.failedPasses);
  return register;
}

export interface MetricsServer {
  address(): AddressInfo;
  close(): Promise<void>;
}

/** Serves `source`'s metrics at http://host:port/metrics (404 for any other path). */
export async function startMetricsServer(source: MetricsSource, listen: { host: string; port: number }): Promise<MetricsServer> {
  let current: Snapshot | null = null;
  const register = rewindRegistry(() => {
    current ??= { status: source.status(), writes: source.writeCounts(), consolidated: source.consolidatedBytes(), tier: source.tier?.() ?? null };
    return current;
  });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }).end('only GET\n');
      return;
    }
    current = null;
    register.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': register.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
    ).finally(() => (current = null));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
