// The second tier under sustained writes: fio (64 KiB sequential writes, QD4, at a fixed rate the
// machine sustains, over a 1 GiB volume written once before, so every write overwrites and ships
// twice: journal and old block) through `rewind serve` on a store whose tier is a real S3 service (a Ceph this
// bench starts with scripts/ceph-dev.sh, or REWIND_TIER_ENDPOINT). Once a second it scrapes
// `serve --metrics`: bytes captured (rewind_written_bytes_total), bytes uploaded
// (rewind_tier_uploaded_bytes_total) and the backlog (rewind_tier_backlog_bytes). After fio it waits
// until the tier holds every write, stops serve (its last pass ships a base at the last write), and
// restores the volume at the last write and at a window end in the middle of the run twice: from the
// tier alone (`rewind restore --from`) and from the local store, and compares the two byte for byte.
//
// Run alone: npm run build && node dist/bench/tier.js [--quick] [--seconds S] [--rate MBPS] [--json-out FILE]
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { applyEnv, s3ForBench, type S3Endpoint } from './ceph.js';
import { exec, firstDifference, rewind, statusOf } from './held-points.js';
import { ensureTools, freePort, rewindBin, settleDisk, stop, vmHwmMB, waitForPort, scrapeMetrics, REWIND_NODE_FLAGS } from './servers.js';
import { isMain } from './main-module.js';
import { fixed } from './format.js';

const MiB = 2 ** 20;
const VOLUME_BYTES = 2 ** 30;
const BUCKET = 'rewind-bench';
/** How long the tier may take to catch up after the writes before the run is called unbounded. */
const DRAIN_WAIT_MS = 300_000;

export interface TierSample {
  /** Seconds since fio started. */
  t: number;
  phase: 'write' | 'drain';
  capturedBytes: number;
  uploadedBytes: number;
  backlogBytes: number;
}

export interface TierRestore {
  /** 'newest': the last write (the base serve shipped at stop); 'middle': a window end halfway (a base and packs back from it). */
  point: 'newest' | 'middle';
  seq: number;
  tierSeconds: number;
  localSeconds: number;
  tierGBps: number;
  localGBps: number;
  /** The two restored files are equal byte for byte. */
  equal: boolean;
}

export interface TierRow {
  workload: string;
  endpoint: 'started' | 'given';
  writeSeconds: number;
  writtenBytes: number;
  captureMBps: number;
  /** Bytes uploaded per second while fio wrote (packs, sealed segments, bases, index, manifests). */
  uploadMBps: number;
  /** Bytes uploaded per second from the start of the writes until the tier had caught up. */
  uploadMBpsToCaughtUp: number;
  /** Bytes uploaded over the whole run per byte captured. */
  uploadedPerCapturedByte: number;
  backlogMaxBytes: number;
  /** The backlog's largest sample in the first and second half of the writes (bounded: not growing). */
  backlogMaxHalvesBytes: [number, number];
  backlogAtEndOfWritesBytes: number;
  /** Seconds from the end of the writes until the tier held every write (backlog 0, chain at the last seq). */
  drainSeconds: number;
  /** Seconds serve took to stop after SIGTERM (its last pass ships a base of the volume). */
  stopSeconds: number;
  /** serve's peak RSS (VmHWM) over the run, MB. */
  peakRssMB: number;
  serveWarnings: string[];
  restores: TierRestore[];
  samples: TierSample[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


export async function benchTier(opts: { quick?: boolean; seconds?: number; rateMBps?: number; log?: (m: string) => void } = {}): Promise<TierRow[]> {
  const log = opts.log ?? ((m: string) => console.error(m));
  if (!ensureTools(log)) return [];
  const s3 = await s3ForBench(log);
  if (!s3) return [];
  const undoEnv = applyEnv(s3.env);
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  try {
    return [await run(s3, prefix, opts, log)];
  } finally {
    if (s3.kind === 'given') await removePrefix(s3.endpoint, prefix).catch((err) => log(`tier: could not remove s3://${BUCKET}/${prefix}: ${(err as Error).message}`));
    undoEnv();
    await s3.close();
  }
}

async function run(s3: S3Endpoint, prefix: string, opts: { quick?: boolean; seconds?: number; rateMBps?: number }, log: (m: string) => void): Promise<TierRow> {
  const seconds = opts.seconds ?? (opts.quick ? 15 : 45);
  const rateMBps = opts.rateMBps ?? 25;
  settleDisk();
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-tier-'));
  const store = join(dir, 'store');
  const must = async (what: string, r: Promise<{ code: number; stdout: string; stderr: string }>) => {
    const x = await r;
    if (x.code !== 0) throw new Error(`${what} exited ${x.code}: ${x.stderr.trim().slice(-2000)}`);
    return x;
  };
  await must('rewind init', rewind('init', store, '--volume', 'disk0:1G', '--window', 'time:1s'));
  const location = JSON.parse((await must('rewind tier', rewind('tier', store, '--url', `s3://${BUCKET}/${prefix}`, '--endpoint', s3.endpoint, '--json'))).stdout).location as string;
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [...REWIND_NODE_FLAGS, rewindBin, 'serve', store, '--listen', `127.0.0.1:${port}`, '--metrics', `127.0.0.1:${metricsPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const warnings = new Set<string>();
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    const lines = (tail + d.toString()).split('\n');
    tail = lines.pop()!;
    for (const l of lines) if (/^rewind: (?!serving|metrics|SIG|closed|shipping history)/.test(l)) warnings.add(l.replace(/\d+/g, 'N'));
  });
  try {
    await waitForPort(port, child);
    // The volume written once first (unmeasured), so every measured write overwrites a block and the
    // tier gets its old contents in a pack as well as the journal: the most there is to ship per byte.
    await fioWrite(port, ['--size=1g']);
    log(`tier: serve's peak RSS after the first write of the volume: ${vmHwmMB(child.pid!).toFixed(0)} MB`);
    await caughtUp(metricsPort, DRAIN_WAIT_MS);
    log(`tier: serve's peak RSS once the tier holds it: ${vmHwmMB(child.pid!).toFixed(0)} MB`);
    const base = await scrapeMetrics(metricsPort);
    const counter = (m: Map<string, number>, name: string) => (m.get(name) ?? NaN) - (base.get(name) ?? 0);
    const samples: TierSample[] = [];
    let phase: TierSample['phase'] = 'write';
    let sampling = true;
    let samplerError: unknown = null;
    const t0 = performance.now();
    const sample = (m: Map<string, number>): TierSample => ({
      t: (performance.now() - t0) / 1000, phase,
      capturedBytes: counter(m, 'rewind_written_bytes_total'),
      uploadedBytes: counter(m, 'rewind_tier_uploaded_bytes_total'),
      backlogBytes: m.get('rewind_tier_backlog_bytes') ?? NaN,
    });
    const sampler = (async () => {
      while (sampling) {
        await sleep(1000);
        samples.push(sample(await scrapeMetrics(metricsPort)));
      }
    })().catch((err) => {
      samplerError = err;
    });
    const stopSampling = async () => {
      sampling = false;
      await sampler;
      if (samplerError !== null) throw samplerError;
    };
    let job: { io_bytes: number; runtime: number };
    let end: TierSample;
    const drainStart = { ms: 0 };
    try {
      job = await fioWrite(port, [`--runtime=${seconds}`, '--time_based', `--rate=${Math.round(rateMBps * 1e6)}`]);
      phase = 'drain';
      drainStart.ms = performance.now();
      end = sample(await caughtUp(metricsPort, DRAIN_WAIT_MS));
    } finally {
      await stopSampling();
    }
    const writing = samples.filter((x) => x.phase === 'write');
    const drainSeconds = (performance.now() - drainStart.ms) / 1000;
    samples.push(end);
    samples.sort((a, b) => a.t - b.t);
    const uploadedTotal = end.uploadedBytes;
    const peakRssMB = vmHwmMB(child.pid!);
    const stopStart = performance.now();
    await stop(child, 600_000);
    const stopSeconds = (performance.now() - stopStart) / 1000;
    if (child.exitCode !== 0) throw new Error(`rewind serve exited ${child.exitCode ?? child.signalCode} at stop`);

    const newest = (await statusOf(store)).lastSeq;
    const windows = JSON.parse((await must('rewind log', rewind('log', store, '--json'))).stdout) as { lastSeq: number }[];
    const middle = windows[Math.floor(windows.length / 2)].lastSeq;
    const restores: TierRestore[] = [];
    for (const [point, seq] of [['newest', newest], ['middle', middle]] as const) {
      const tierOut = join(dir, `tier-${point}.img`);
      const localOut = join(dir, `local-${point}.img`);
      settleDisk();
      const fromTier = JSON.parse((await must('rewind restore --from', rewind('restore', '--from', location, '--endpoint', s3.endpoint, '--volume', 'disk0', '--seq', String(seq), '--out', tierOut, '--json'))).stdout) as { seconds: number };
      settleDisk();
      const local = JSON.parse((await must('rewind restore', rewind('restore', store, '--volume', 'disk0', '--seq', String(seq), '--out', localOut, '--json'))).stdout) as { seconds: number };
      const equal = (await firstDifference(tierOut, localOut)) === null;
      restores.push({ point, seq, tierSeconds: fromTier.seconds, localSeconds: local.seconds, tierGBps: VOLUME_BYTES / 1e9 / fromTier.seconds, localGBps: VOLUME_BYTES / 1e9 / local.seconds, equal });
      log(`tier: restore at seq ${seq} (${point}): tier ${fixed(fromTier.seconds)} s, local ${fixed(local.seconds)} s, ${equal ? 'equal' : 'DIFFERENT'}`);
      rmSync(tierOut, { force: true });
      rmSync(localOut, { force: true });
    }

    const first = writing[0];
    const last = writing.at(-1)!;
    const half = (k: 0 | 1) => Math.max(...writing.filter((x) => (x.t < last.t / 2) === (k === 0)).map((x) => x.backlogBytes));
    const caughtUpT = end.t;
    return {
      workload: `64 KiB sequential overwrite, QD4, ${rateMBps} MB/s`,
      endpoint: s3.kind,
      writeSeconds: job.runtime / 1000,
      writtenBytes: job.io_bytes,
      captureMBps: job.io_bytes / 1e6 / (job.runtime / 1000),
      uploadMBps: (last.uploadedBytes - first.uploadedBytes) / 1e6 / (last.t - first.t),
      uploadMBpsToCaughtUp: uploadedTotal / 1e6 / caughtUpT,
      uploadedPerCapturedByte: uploadedTotal / job.io_bytes,
      backlogMaxBytes: Math.max(...samples.map((s) => s.backlogBytes)),
      backlogMaxHalvesBytes: [half(0), half(1)],
      backlogAtEndOfWritesBytes: last.backlogBytes,
      drainSeconds,
      stopSeconds,
      peakRssMB,
      serveWarnings: [...warnings],
      restores,
      samples,
    };
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** fio's 64 KiB sequential writes at QD4 through serve's NBD export; its write figures. */
async function fioWrite(port: number, args: string[]): Promise<{ io_bytes: number; runtime: number }> {
  const fio = await exec('fio', ['--name=tier', '--ioengine=nbd', `--uri=nbd://127.0.0.1:${port}/disk0`, '--rw=write', '--bs=64k', '--iodepth=4', ...args, '--output-format=json']);
  if (fio.code !== 0) throw new Error(`fio exited ${fio.code}: ${fio.stderr.trim().slice(0, 2000)}`);
  return JSON.parse(fio.stdout.slice(fio.stdout.indexOf('{'))).jobs[0].write;
}

/** Waits until every write is applied and in a shipped pack with nothing waiting; the metrics then. */
async function caughtUp(metricsPort: number, waitMs: number): Promise<Map<string, number>> {
  const start = performance.now();
  for (;;) {
    const m = await scrapeMetrics(metricsPort);
    if (m.get('rewind_tier_backlog_bytes') === 0 && m.get('rewind_tier_shipped_seq') === m.get('rewind_writes_total') && m.get('rewind_replica_lag_bytes') === 0) return m;
    if (performance.now() - start > waitMs) throw new Error(`the tier did not catch up within ${waitMs / 1000} s (backlog ${m.get('rewind_tier_backlog_bytes')} bytes)`);
    await sleep(250);
  }
}

/** Removes a prefix this bench wrote to a given S3 service (a bench may list; rewind never does). */
async function removePrefix(endpoint: string, prefix: string): Promise<void> {
  const client = new S3Client({ endpoint, forcePathStyle: true, region: process.env.AWS_REGION ?? 'us-east-1', requestChecksumCalculation: 'WHEN_REQUIRED' });
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: o.Key! }));
      token = page.NextContinuationToken;
    } while (token);
  } finally {
    client.destroy();
  }
}

export function printTier(rows: TierRow[]): void {
  const f = (n: number | null, digits = 0) => fixed(n, digits);
  console.table(rows.map((r) => ({
    workload: r.workload,
    S3: r.endpoint === 'started' ? 'Ceph (ceph-dev.sh)' : 'REWIND_TIER_ENDPOINT',
    'write s': f(r.writeSeconds),
    'capture MB/s': f(r.captureMBps),
    'upload MB/s writing / to caught up': `${f(r.uploadMBps)} / ${f(r.uploadMBpsToCaughtUp)}`,
    'uploaded / captured': f(r.uploadedPerCapturedByte, 2),
    'backlog max 1st / 2nd half / end of writes MiB': `${f(r.backlogMaxHalvesBytes[0] / MiB)} / ${f(r.backlogMaxHalvesBytes[1] / MiB)} / ${f(r.backlogAtEndOfWritesBytes / MiB)}`,
    'caught up after s': f(r.drainSeconds, 1),
    'stop s': f(r.stopSeconds, 1),
    'peak RSS MB': f(r.peakRssMB),
  })));
  for (const r of rows) {
    console.table(r.restores.map((x) => ({
      point: x.point, seq: x.seq,
      'from tier GB/s (s)': `${f(x.tierGBps, 2)} (${f(x.tierSeconds, 2)})`,
      'local GB/s (s)': `${f(x.localGBps, 2)} (${f(x.localSeconds, 2)})`,
      equal: x.equal ? 'yes' : 'NO',
    })));
    // The backlog over time, every 5th second.
    console.log(`backlog MiB over time: ${r.samples.filter((_, i) => i % 5 === 4).map((s) => `${f(s.t)}s ${f(s.backlogBytes / MiB)}${s.phase === 'drain' ? '*' : ''}`).join(', ')} (* after the writes)`);
    if (r.serveWarnings.length > 0) console.log(`serve warned: ${r.serveWarnings.join(' | ')}`);
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const rows = await benchTier({ quick: args.includes('--quick'), seconds: arg('--seconds') ? Number(arg('--seconds')) : undefined, rateMBps: arg('--rate') ? Number(arg('--rate')) : undefined });
  printTier(rows);
  const out = arg('--json-out');
  if (out) writeFileSync(out, JSON.stringify(rows, null, 2) + '\n');
}
