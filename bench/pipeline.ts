// The pipeline: a sustained stream of closed windows (window 'bytes:16M') through Store.write as fast
// as the engine lets it, with 1, 2 and N (= availableParallelism) kernel-pool workers. Measures
// captured MB/s (until the last write returns), applied MB/s (until settle() returns), and the lag,
// sampled every 50 ms: writes captured but not applied (lastSeq - appliedSeq) and milliseconds between
// the newest captured write and the capture of the newest applied one. The lag is bounded when its
// maximum over the second half of the run is not above the first half's (plus 25 % and one window).
//
// Run alone: npm run build && node dist/bench/pipeline.js [--quick] [--mib N]

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initStore, Store } from '../src/index.js';
import { prng } from '../src/prng.js';
import { isMain } from './main-module.js';
import { fixed } from './format.js';
import { settleDisk } from './servers.js';

export interface PipelineRow {
  threads: number;
  totalMiB: number;
  capturedMBps: number;
  appliedMBps: number;
  /** Seconds from the first write until the last write returned / until settle() returned. */
  captureSeconds: number;
  applySeconds: number;
  lagWritesMax: number;
  lagMsMax: number;
  lagWritesAtEnd: number;
  lagMsAtEnd: number;
  lagMsMaxFirstHalf: number;
  lagMsMaxSecondHalf: number;
  bounded: boolean;
  /** Applied >= 90 % of captured: the pipeline keeps up. */
  keepsUp: boolean;
}

const VOLUME_BYTES = 2 ** 30;
const WINDOW = 'bytes:16M';
/**
 * The configured bound on replica lag (Store limit pendingBytesMax): capture waits once closed
 * windows not yet applied hold this much, so the lag levels off instead of growing with the run.
 */
const LAG_BOUND_BYTES = 128 * 2 ** 20;


async function runOne(threads: number, totalBytes: number): Promise<PipelineRow> {
  settleDisk();
  const dir = mkdtempSync(join(tmpdir(), 'rewind-pipeline-'));
  try {
    await initStore(join(dir, 'store'), { volumes: [{ name: 'disk0', size: VOLUME_BYTES }], window: WINDOW });
    const store = await Store.open(join(dir, 'store'), { threads, limits: { pendingBytesMax: LAG_BOUND_BYTES } });
    const rand = prng(42);
    const source = Buffer.allocUnsafe(8 * 2 ** 20);
    for (let i = 0; i < source.length; i += 4) source.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
    // Capture checkpoints (seq, time), to turn appliedSeq into "when was that write captured".
    const cpSeq: number[] = [];
    const cpTime: number[] = [];
    const samples: { t: number; lagWrites: number; lagMs: number }[] = [];
    const t0 = performance.now();
    const sample = () => {
      const now = performance.now();
      const last = store.lastSeq;
      const applied = store.appliedSeq;
      let lagMs = 0;
      if (applied < last) {
        // First checkpoint at or after the newest applied write: when it was captured (upper bound).
        let lo = 0;
        let hi = cpSeq.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cpSeq[mid] <= applied) lo = mid + 1;
          else hi = mid;
        }
        const capturedAt = lo > 0 ? cpTime[lo - 1] : t0;
        lagMs = now - capturedAt;
      }
      samples.push({ t: now - t0, lagWrites: last - applied, lagMs });
    };
    const timer = setInterval(sample, 50);
    let written = 0;
    let seqOff = 0;
    let i = 0;
    while (written < totalBytes) {
      // Per 1 MiB: half in 4 KiB random writes, half in 64 KiB sequential writes.
      for (let k = 0; k < 128; k++) {
        const off = Math.floor(rand() * (VOLUME_BYTES / 4096)) * 4096;
        await store.write('disk0', off, source.subarray((i++ * 4096) % (source.length - 4096), ((i - 1) * 4096) % (source.length - 4096) + 4096));
      }
      for (let k = 0; k < 8; k++) {
        const at = (i++ * 65536 + 12345) % (source.length - 65536);
        await store.write('disk0', seqOff, source.subarray(at, at + 65536));
        seqOff = (seqOff + 65536) % VOLUME_BYTES;
      }
      written += 2 ** 20;
      cpSeq.push(store.lastSeq);
      cpTime.push(performance.now());
      // Let the apply loop and the sampler run, as a server between socket reads would.
      await new Promise((r) => setImmediate(r));
    }
    const captured = performance.now();
    sample();
    const atEnd = samples[samples.length - 1];
    await store.settle();
    const applied = performance.now();
    clearInterval(timer);
    await store.close();
    const captureSeconds = (captured - t0) / 1000;
    const applySeconds = (applied - t0) / 1000;
    const during = samples.filter((s) => s.t <= captured - t0);
    const half = (captured - t0) / 2;
    const maxOf = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);
    const first = maxOf(during.filter((s) => s.t <= half).map((s) => s.lagMs));
    const second = maxOf(during.filter((s) => s.t > half).map((s) => s.lagMs));
    const capturedMBps = totalBytes / captureSeconds / 1e6;
    const appliedMBps = totalBytes / applySeconds / 1e6;
    // One window of slack: a 16 MiB window at the applied rate.
    const windowMs = (16 * 2 ** 20) / (appliedMBps * 1e6) * 1000;
    return {
      threads, totalMiB: totalBytes / 2 ** 20, capturedMBps, appliedMBps, captureSeconds, applySeconds,
      lagWritesMax: maxOf(during.map((s) => s.lagWrites)), lagMsMax: maxOf(during.map((s) => s.lagMs)),
      lagWritesAtEnd: atEnd.lagWrites, lagMsAtEnd: atEnd.lagMs,
      lagMsMaxFirstHalf: first, lagMsMaxSecondHalf: second,
      bounded: second <= first * 1.25 + windowMs,
      keepsUp: appliedMBps >= 0.9 * capturedMBps,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchPipeline(opts: { quick?: boolean; totalMiB?: number; threads?: number[] } = {}): Promise<PipelineRow[]> {
  const totalBytes = (opts.totalMiB ?? (opts.quick ? 128 : 512)) * 2 ** 20;
  const n = availableParallelism();
  const threads = opts.threads ?? [...new Set([1, 2, n])];
  const rows: PipelineRow[] = [];
  for (const t of threads) rows.push(await runOne(t, totalBytes));
  return rows;
}

export function printPipeline(rows: PipelineRow[]): void {
  const f = (n: number | null, digits = 0) => fixed(n, digits);
  console.table(rows.map((r) => ({
    workers: r.threads,
    MiB: r.totalMiB,
    'captured MB/s': f(r.capturedMBps),
    'applied MB/s': f(r.appliedMBps),
    'lag max (writes)': r.lagWritesMax,
    'lag max ms': f(r.lagMsMax),
    'lag at end (writes)': r.lagWritesAtEnd,
    'lag at end ms': f(r.lagMsAtEnd),
    'max ms 1st/2nd half': `${f(r.lagMsMaxFirstHalf)} / ${f(r.lagMsMaxSecondHalf)}`,
    bounded: r.bounded ? 'yes' : 'no',
    'keeps up': r.keepsUp ? 'yes' : 'no',
  })));
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const mib = args.includes('--mib') ? Number(args[args.indexOf('--mib') + 1]) : undefined;
  const rows = await benchPipeline({ quick: args.includes('--quick'), totalMiB: mib });
  printPipeline(rows);
}
