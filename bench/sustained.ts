// Sustained load: fio writes through `rewind serve` (a fresh store, one 1 GiB volume, the default
// window policy and the default replica lag bound) for longer than the lag allowance lasts, while
// this process samples, once a second, how far the replica lags: bytes captured in the journal but
// not yet applied (journal bytes minus the bytes of the windows in the transaction index). The lag
// is bounded when its maximum over the second half of the run is no higher than the configured
// bound plus one window; the rate fio sees over the last third is the steady state, where capture
// runs at the speed windows are applied. Against the disk: its sequential write rate (measured
// first, bench/servers.ts diskWriteMBps) over the bytes rewind makes dirty per byte captured in the
// last third (/proc/PID/io write_bytes: journal, production, pack, replica) is the most capture can
// be with rewind's layout; the goal is 85 % of that.
//
// Run alone: npm run build && node dist/bench/sustained.js [--quick] [--seconds S] [--bs 64k|4k]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMITS } from '../src/limits.js';
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../src/journal/record.js';
import { nodeStorage } from '../src/storage/node-storage.js';
import { TransactionIndex } from '../src/transactions/transactions.js';
import { diskWriteMBps, ensureTools, freePort, ioWriteBytes, rewindBin, settleDisk, stop, threadCpuUs, vmHwmMB, waitForPort, REWIND_NODE_FLAGS } from './servers.js';
import { isMain } from './main-module.js';
import { fixed } from './format.js';

export interface SustainedSample {
  /** Seconds since fio started. */
  t: number;
  capturedBytes: number;
  appliedBytes: number;
  lagBytes: number;
  /** Bytes the serve process made dirty for the disk so far (/proc/PID/io write_bytes). */
  ioWriteBytes: number;
  /** CPU the serve process used so far per thread name (bench/servers.ts threadCpuUs), microseconds. */
  threadCpuUs: Record<string, number>;
}

export interface SustainedRow {
  workload: string;
  seconds: number;
  /** MB/s captured over the first and the last third of the run. */
  firstThirdMBps: number;
  lastThirdMBps: number;
  lagMaxMiBFirstHalf: number;
  lagMaxMiBSecondHalf: number;
  lagBoundMiB: number;
  bounded: boolean;
  peakRssMB: number;
  /** The disk's sequential write rate (1 GiB in 1 MiB writes and one fdatasync), MB/s. */
  diskMBps: number;
  /** Bytes made dirty for the disk per byte captured, over the last third. */
  bytesPerByte: number;
  /** What the layout allows: diskMBps / bytesPerByte. */
  layoutMBps: number;
  /** lastThirdMBps / layoutMBps (goal: >= 0.85). */
  ofLayout: number;
  /** Share of one core each thread of serve used over the last third (main, rw-kernel, other, ...). */
  lastThirdCores: Record<string, number>;
  samples: SustainedSample[];
}

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Journal bytes on disk, less segment headers: records (header and payload) captured. */
function journalPayloadBytes(store: string): number {
  const dir = join(store, 'journal');
  let bytes = 0;
  let segments = 0;
  for (const name of nodeStorage.list(dir)) {
    if (!name.endsWith('.seg')) continue;
    try {
      bytes += statSync(join(dir, name)).size;
      segments++;
    } catch {
      // renamed (sealed) between list and stat: counted at the next sample
    }
  }
  return bytes - segments * SEGMENT_HEADER_BYTES;
}

export async function benchSustained(opts: { quick?: boolean; seconds?: number; bs?: string; log?: (m: string) => void } = {}): Promise<SustainedRow[]> {
  const log = opts.log ?? ((m: string) => console.error(m));
  if (!ensureTools(log)) return [];
  const seconds = opts.seconds ?? (opts.quick ? 10 : 30);
  const bs = opts.bs ?? '64k';
  const bsBytes = bs === '4k' ? 4096 : 65536;
  const dir = mkdtempSync(join(tmpdir(), 'rewind-sustained-'));
  const diskMBps = diskWriteMBps(dir);
  log(`sustained: the disk writes ${diskMBps.toFixed(0)} MB/s sequentially (1 GiB, 1 MiB writes, fdatasync)`);
  settleDisk();
  const store = join(dir, 'store');
  const port = await freePort();
  const child = spawn(process.execPath, [...REWIND_NODE_FLAGS, rewindBin, 'serve', store, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  const samples: SustainedSample[] = [];
  try {
    await waitForPort(port, child);
    const index = await TransactionIndex.open(nodeStorage, join(store, 'index'), false);
    const fio = spawn('fio', [
      '--name=sustained', '--ioengine=nbd', `--uri=nbd://127.0.0.1:${port}/disk0`, bs === '4k' ? '--rw=randwrite' : '--rw=write',
      `--bs=${bs}`, `--iodepth=${bs === '4k' ? 16 : 4}`, `--runtime=${seconds}`, '--time_based', '--output-format=json',
    ], { stdio: ['ignore', 'ignore', 'ignore'] });
    const fioDone = new Promise<number>((r) => fio.once('exit', (code) => r(code ?? -1)));
    let running = true;
    void fioDone.then(() => (running = false));
    const t0 = performance.now();
    let appliedBytes = 0;
    let seen = 0;
    while (running) {
      await sleep(1000);
      index.refresh();
      for (; seen < index.entries.length; seen++) {
        appliedBytes += index.entries[seen].bytesWritten;
      }
      // Every record is one fio write of bsBytes: take the record headers off.
      const records = journalPayloadBytes(store);
      const capturedBytes = records - Math.round(records / (bsBytes + RECORD_HEADER_BYTES)) * RECORD_HEADER_BYTES;
      const t = (performance.now() - t0) / 1000;
      samples.push({ t, capturedBytes, appliedBytes, lagBytes: Math.max(0, capturedBytes - appliedBytes), ioWriteBytes: ioWriteBytes(child.pid!), threadCpuUs: threadCpuUs(child.pid!) });
    }
    const code = await fioDone;
    if (code !== 0) throw new Error(`fio exited with ${code}`);
    index.close();
    const peakRssMB = vmHwmMB(child.pid!);
    const at = (t: number) => samples.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best), samples[0]);
    const rate = (from: number, to: number) => {
      const a = at(from);
      const b = at(to);
      return (b.capturedBytes - a.capturedBytes) / 1e6 / Math.max(1e-9, b.t - a.t);
    };
    const lastA = at((2 * seconds) / 3);
    const lastB = at(seconds);
    const bytesPerByte = (lastB.ioWriteBytes - lastA.ioWriteBytes) / Math.max(1, lastB.capturedBytes - lastA.capturedBytes);
    const lastThirdMBps = rate((2 * seconds) / 3, seconds);
    const layoutMBps = diskMBps / bytesPerByte;
    const lastThirdCores: Record<string, number> = {};
    for (const [name, us] of Object.entries(lastB.threadCpuUs)) lastThirdCores[name] = (us - (lastA.threadCpuUs[name] ?? 0)) / 1e6 / Math.max(1e-9, lastB.t - lastA.t);
    const half = seconds / 2;
    const maxLag = (pred: (s: SustainedSample) => boolean) => Math.max(0, ...samples.filter(pred).map((s) => s.lagBytes)) / MiB;
    const lagBoundMiB = LIMITS.pendingBytesMax / MiB;
    const second = maxLag((s) => s.t > half);
    return [{
      workload: bs === '4k' ? '4 KiB random write, QD16' : '64 KiB sequential write, QD4',
      seconds,
      firstThirdMBps: rate(0, seconds / 3),
      lastThirdMBps,
      lagMaxMiBFirstHalf: maxLag((s) => s.t <= half),
      lagMaxMiBSecondHalf: second,
      lagBoundMiB,
      bounded: second <= lagBoundMiB + LIMITS.windowBytesMax / MiB,
      peakRssMB,
      diskMBps, bytesPerByte, layoutMBps, ofLayout: lastThirdMBps / layoutMBps, lastThirdCores,
      samples,
    }];
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printSustained(rows: SustainedRow[]): void {
  const f = (n: number | null, digits = 0) => fixed(n, digits);
  console.table(rows.map((r) => ({
    workload: r.workload,
    seconds: r.seconds,
    'MB/s first third': f(r.firstThirdMBps),
    'MB/s last third': f(r.lastThirdMBps),
    'lag max MiB 1st/2nd half': `${f(r.lagMaxMiBFirstHalf)} / ${f(r.lagMaxMiBSecondHalf)}`,
    'lag bound MiB': f(r.lagBoundMiB),
    bounded: r.bounded ? 'yes' : 'no',
    'peak RSS MB': f(r.peakRssMB),
    'disk MB/s': f(r.diskMBps),
    'bytes to disk per byte (last third)': f(r.bytesPerByte, 2),
    'layout limit MB/s': f(r.layoutMBps),
    'of the limit (goal >= 0.85)': f(r.ofLayout, 2),
  })));
  for (const r of rows) console.log(`sustained: cores used per thread over the last third: ${Object.entries(r.lastThirdCores).map(([t, c]) => `${t} ${c.toFixed(2)}`).join(', ')}`);
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const rows = await benchSustained({ quick: args.includes('--quick'), seconds: arg('--seconds') ? Number(arg('--seconds')) : undefined, bs: arg('--bs') });
  printSustained(rows);
}
