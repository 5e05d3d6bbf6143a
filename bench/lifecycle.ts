// History lifecycle under sustained load: fio writes through `rewind serve` (one 1 GiB volume, windows
// `time:1s`, a retention policy whose tiers last seconds, so windows leave them during the run, and
// a capacity a tenth of the bytes the run writes, sized from the rate fio reaches in its first
// seconds and set with `rewind config`). Once a second this process scrapes `serve --metrics`:
// history bytes against the capacity, replica lag against its bound (a quarter of the capacity), the
// consolidation backlog, the bytes consolidation merges read and wrote, and the server's /proc/PID/io
// write_bytes; it also lists journal/ and increments/ to split history into its parts.
//
// fio runs in phases. After each main phase the whole volume is read over NBD and restored by seq and
// by time while serve runs (held-points.ts). Then the load stops until the replica and consolidation
// have caught up. Two one-second phases follow: the point after the first is held by an open view
// (a lease) through the second, so that when serve stops a point that is not the newest is still
// there to restore. After serve stops, every point is restored again and compared byte for byte with
// what NBD read; the ones the capacity retired are reported as retired.
//
// Run alone: npm run build && node dist/bench/lifecycle.js [--quick] [--seconds S] [--capacity BYTES] [--retain SPEC] [--rate MBPS] [--json-out FILE]

import { spawn } from 'node:child_process';
import { CAPACITY_SHARES } from '../src/store/open.js';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMITS } from '../src/limits.js';
import { CAPACITY_BYTES_MIN } from '../src/lifecycle/capacity.js';
import { ensureTools, freePort, ioWriteBytes, rewindBin, settleDisk, stop, vmHwmMB, waitForPort, scrapeMetrics, REWIND_NODE_FLAGS } from './servers.js';
import { exec, holdView, readPoint, restoreAndCompare, rewind, statusOf, type ReadPoint, type Verdict } from './held-points.js';
import { isMain } from './main-module.js';
import { fixed } from './format.js';

/** Tiers short enough for windows to leave them within seconds (minutely merges the windows of one minute). */
export const LIFECYCLE_RETAIN = 'writes:1s,windows:2s,minutely:10m';
/** The capture rate the capacity is sized for (the sustained bench's steady state is 140-250 MB/s). */
const EXPECTED_CAPTURE_MBPS = 150;

export interface LifecycleSample {
  /** Seconds since the first phase started. */
  t: number;
  phase: 'write' | 'read' | 'settle';
  capacityBytes: number;
  historyBytes: number;
  /** Of which in journal/ and increments/ (listed by this process). */
  journalBytes: number;
  packBytes: number;
  lagBytes: number;
  backlogBytes: number;
  capturedBytes: number;
  consolidationReadBytes: number;
  consolidationWrittenBytes: number;
  /** The server's /proc/PID/io write_bytes since the first phase started. */
  diskWriteBytes: number;
  /** The server's resident memory (process_resident_memory_bytes). */
  rssBytes: number;
}

export interface LifecyclePoint extends Omit<ReadPoint, 'file'> {
  during: { seq: Verdict; time: Verdict };
  after: { seq: Verdict; time: Verdict };
}

export interface LifecycleRow {
  workload: string;
  retain: string;
  capacityBytes: number;
  lagBoundBytes: number;
  /** fio's MB/s in the first seconds, which the capacity is sized from. */
  calibratedMBps: number;
  /** Seconds fio wrote, and of the whole run (reads of points and the final settle included). */
  writeSeconds: number;
  wallSeconds: number;
  writtenBytes: number;
  /** Capture MB/s as fio saw it while writing. */
  captureMBps: number;
  /** Bytes of packs read (and written) by consolidation merges per second, while fio wrote and over the run. */
  consolidationReadMBpsWriting: number;
  consolidationReadMBps: number;
  consolidationWrittenMBps: number;
  historyMaxBytes: number;
  underCapacity: boolean;
  lagMaxBytes: number;
  lagBounded: boolean;
  backlogMaxBytes: number;
  backlogAtEndOfWritesBytes: number;
  backlogAfterSettleBytes: number;
  settleSeconds: number;
  diskBytesPerByte: number;
  /** serve's peak RSS (VmHWM) over the whole run, MB. */
  peakRssMB: number;
  oldestRestorableSeqAfter: number;
  verifyExitCode: number;
  /** Distinct warnings serve logged (capacity retiring history before the policy says, ...). */
  serveWarnings: string[];
  points: LifecyclePoint[];
  samples: LifecycleSample[];
}

const MiB = 2 ** 20;
const NOT_TRIED: Verdict = { outcome: 'not tried', restoredSeq: null };

function verdict(v: Verdict): string {
  switch (v.outcome) {
    case 'pass':
      return 'pass';
    case 'not tried':
      return '-';
    case 'retired':
      return `retired (nearest held: ${v.restoredSeq ?? 'none'})`;
    default:
      return `${v.outcome.toUpperCase()}: ${v.detail}`;
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** The write phases: a calibration, `points` equal phases with a point read after each, then two one-second phases (see below). */
export function phaseSeconds(seconds: number, points: number, calibration: number): number[] {
  const each = (seconds - calibration - 2) / points;
  return [calibration, ...Array.from({ length: points }, () => each), 1, 1];
}

export async function benchLifecycle(opts: {
  quick?: boolean; seconds?: number; capacityBytes?: number; retain?: string;
  /** fio's write rate (MB/s; default: as fast as it goes), and the row's name for it. */
  rateMBps?: number; workload?: string;
  log?: (m: string) => void;
} = {}): Promise<LifecycleRow[]> {
  const log = opts.log ?? ((m: string) => console.error(m));
  if (!ensureTools(log)) return [];
  const seconds = opts.seconds ?? (opts.quick ? 15 : 60);
  const retain = opts.retain ?? LIFECYCLE_RETAIN;
  const [calibration, ...phases] = phaseSeconds(seconds, opts.quick ? 2 : 3, opts.quick ? 2 : 3);
  const sized = (mbps: number) => Math.max(CAPACITY_BYTES_MIN, Math.round((mbps * 1e6 * seconds) / 10 / MiB) * MiB);
  let capacityBytes = opts.capacityBytes ?? sized(EXPECTED_CAPTURE_MBPS);
  settleDisk();
  const dir = mkdtempSync(join(tmpdir(), 'rewind-lifecycle-'));
  const store = join(dir, 'store');
  const init = await rewind('init', store, '--volume', 'disk0:1G', '--window', 'time:1s', '--retain', retain, '--capacity', String(capacityBytes));
  if (init.code !== 0) throw new Error(`rewind init exited ${init.code}: ${init.stderr.trim()}`);
  const port = await freePort();
  const metricsPort = await freePort();
  const uri = `nbd://127.0.0.1:${port}/disk0`;
  const child = spawn(process.execPath, [...REWIND_NODE_FLAGS, rewindBin, 'serve', store, '--listen', `127.0.0.1:${port}`, '--metrics', `127.0.0.1:${metricsPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const warnings = new Set<string>();
  /** The last lines serve printed, for the error when something fails. */
  const serveLog: string[] = [];
  let stderrTail = '';
  child.stderr!.on('data', (d: Buffer) => {
    const lines = (stderrTail + d.toString()).split('\n');
    stderrTail = lines.pop()!;
    // Numbers vary from line to line; the kinds of warning are what the report lists.
    for (const l of lines) if (/^rewind: (?!serving|metrics|SIG|retention changed|closed)/.test(l)) warnings.add(l.replace(/\d+/g, 'N'));
    serveLog.push(...lines);
    serveLog.splice(0, Math.max(0, serveLog.length - 40));
  });
  const samples: LifecycleSample[] = [];
  const points: { read: ReadPoint; during: LifecyclePoint['during'] }[] = [];
  let release: (() => Promise<void>) | null = null;
  try {
    await waitForPort(port, child);
    const t0 = performance.now();
    const io0 = ioWriteBytes(child.pid!);
    let phase: LifecycleSample['phase'] = 'write';
    let sampling = true;
    let samplerError: unknown = null;
    const sampler = (async () => {
      while (sampling) {
        await sleep(1000);
        const m = await scrapeMetrics(metricsPort);
        samples.push({
          t: (performance.now() - t0) / 1000,
          phase,
          capacityBytes: m.get('rewind_history_capacity_bytes') ?? NaN,
          historyBytes: m.get('rewind_history_bytes') ?? NaN,
          journalBytes: dirBytes(join(store, 'journal')),
          packBytes: dirBytes(join(store, 'increments')),
          lagBytes: m.get('rewind_replica_lag_bytes') ?? NaN,
          backlogBytes: m.get('rewind_consolidation_backlog_bytes') ?? NaN,
          capturedBytes: m.get('rewind_written_bytes_total') ?? NaN,
          consolidationReadBytes: m.get('rewind_consolidation_read_bytes_total') ?? NaN,
          consolidationWrittenBytes: m.get('rewind_consolidation_written_bytes_total') ?? NaN,
          diskWriteBytes: ioWriteBytes(child.pid!) - io0,
          rssBytes: m.get('process_resident_memory_bytes') ?? NaN,
        });
      }
    })().catch((err) => {
      samplerError = err;
    });
    let writtenBytes = 0;
    let writeMs = 0;
    const write = async (name: string, s: number) => {
      phase = 'write';
      const fio = await exec('fio', [
        `--name=${name}`, '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=64k', '--iodepth=4', `--runtime=${s}`, '--time_based', '--output-format=json',
        ...(opts.rateMBps ? [`--rate=${Math.round(opts.rateMBps * 1e6)}`] : []),
      ]);
      if (fio.code !== 0) throw new Error(`fio exited ${fio.code}: ${fio.stderr.trim().slice(0, 2000)}\nserve's last lines:\n${serveLog.join('\n')}`);
      const job = JSON.parse(fio.stdout.slice(fio.stdout.indexOf('{'))).jobs[0].write as { io_bytes: number; runtime: number };
      writtenBytes += job.io_bytes;
      writeMs += job.runtime;
      phase = 'read';
      return job.io_bytes / 1e6 / (job.runtime / 1000);
    };
    const point = async (n: number, during = true) => {
      const read = await readPoint(store, uri, join(dir, `point${n}.img`), writeMs / 1000);
      const restored = during
        ? { seq: await restoreAndCompare(store, 'disk0', read, 'seq', dir), time: await restoreAndCompare(store, 'disk0', read, 'time', dir) }
        : { seq: NOT_TRIED, time: NOT_TRIED };
      log(`lifecycle: point ${n} after ${fixed(writeMs / 1000, 1)} s of writes: seq ${read.seq}${read.exact ? '' : ' (not exact)'}; restored while serving by seq: ${verdict(restored.seq)}, by time: ${verdict(restored.time)}`);
      points.push({ read, during: restored });
    };

    // Calibration: the capacity is a tenth of what the whole run will write at the rate measured now.
    const calibratedMBps = await write('calibrate', calibration);
    if (opts.capacityBytes === undefined) {
      capacityBytes = sized(calibratedMBps);
      const set = await rewind('config', store, '--capacity', String(capacityBytes));
      if (set.code !== 0) throw new Error(`rewind config exited ${set.code}: ${set.stderr.trim()}`);
      while (samples.at(-1)?.capacityBytes !== capacityBytes) await sleep(250);
    }
    const lagBoundBytes = Math.min(LIMITS.pendingBytesMax, Math.floor(capacityBytes / CAPACITY_SHARES.pending));
    const firstSample = samples.length;
    log(`lifecycle: ${fixed(calibratedMBps)} MB/s in the first ${calibration} s: capacity ${capacityBytes} bytes (replica-lag bound ${lagBoundBytes})`);

    // The main load, a point read and restored after each phase.
    for (let i = 0; i < phases.length - 2; i++) {
      await write(`phase${i + 1}`, phases[i]);
      await point(points.length + 1);
    }
    const backlogAtEndOfWrites = samples.filter((s) => s.phase === 'write').at(-1)?.backlogBytes ?? NaN;
    // Settle: the replica catches up and consolidation works off its backlog (at most 120 s).
    phase = 'settle';
    const settleStart = performance.now();
    const caughtUp = () => {
      const s = samples.at(-1);
      return s !== undefined && s.phase === 'settle' && s.lagBytes === 0 && s.backlogBytes === 0;
    };
    while (!caughtUp() && performance.now() - settleStart < 120_000) await sleep(250);
    const settleSeconds = (performance.now() - settleStart) / 1000;
    const backlogAfterSettle = samples.at(-1)!.backlogBytes;

    // A point that is not the newest when serve stops: written, held by an open view (a lease, so the
    // policy's tiers of seconds do not consolidate it away), then one more second of writes and a last
    // point. After serve stops, both are restored.
    await write('before-held', phases.at(-2)!);
    // The writes counter of a store serve created is its last seq, and a scrape is quicker than
    // `rewind status` (the view must open before the window's end leaves the windows tier).
    const held = (await scrapeMetrics(metricsPort)).get('rewind_writes_total')!;
    const releaseView = await holdView(`${uri}@seq=${held}`);
    release = releaseView;
    await point(points.length + 1, false);
    if (points.at(-1)!.read.seq !== held) throw new Error(`the view holds seq ${held}, but the point read is seq ${points.at(-1)!.read.seq}`);
    await write('after-held', phases.at(-1)!);
    await point(points.length + 1, false);
    sampling = false;
    await sampler;
    if (samplerError !== null) throw samplerError;
    const wallSeconds = (performance.now() - t0) / 1000;
    release = null;
    await releaseView();
    const peakRssMB = vmHwmMB(child.pid!);
    await stop(child);

    const after = await statusOf(store);
    const checked: LifecyclePoint[] = [];
    for (const { read, during } of points) {
      const { file: _file, ...p } = read;
      checked.push({ ...p, during, after: { seq: await restoreAndCompare(store, 'disk0', read, 'seq', dir), time: await restoreAndCompare(store, 'disk0', read, 'time', dir) } });
    }
    const verify = await rewind('verify', store);

    const measured = samples.slice(firstSample);
    const last = samples.at(-1)!;
    const delta = (k: 'consolidationReadBytes' | 'consolidationWrittenBytes', pred: (s: LifecycleSample) => boolean) =>
      measured.reduce((sum, s) => sum + (pred(s) ? s[k] - samples[samples.indexOf(s) - 1][k] : 0), 0);
    const writing = measured.filter((s) => s.phase === 'write').length;
    const max = (k: 'historyBytes' | 'lagBytes' | 'backlogBytes') => Math.max(...measured.map((s) => s[k]));
    const historyMaxBytes = max('historyBytes');
    const lagMaxBytes = max('lagBytes');
    const span = last.t - samples[firstSample - 1].t;
    return [{
      workload: opts.workload ?? '64 KiB sequential write, QD4',
      retain,
      capacityBytes,
      lagBoundBytes,
      calibratedMBps,
      writeSeconds: writeMs / 1000,
      wallSeconds,
      writtenBytes,
      captureMBps: writtenBytes / 1e6 / (writeMs / 1000),
      consolidationReadMBpsWriting: delta('consolidationReadBytes', (s) => s.phase === 'write') / 1e6 / writing,
      consolidationReadMBps: delta('consolidationReadBytes', () => true) / 1e6 / span,
      consolidationWrittenMBps: delta('consolidationWrittenBytes', () => true) / 1e6 / span,
      historyMaxBytes,
      underCapacity: historyMaxBytes <= capacityBytes,
      lagMaxBytes,
      // Capture admits the write that crosses the bound, as in the sustained bench: one window over at most.
      lagBounded: lagMaxBytes <= lagBoundBytes + LIMITS.windowBytesMax,
      backlogMaxBytes: max('backlogBytes'),
      backlogAtEndOfWritesBytes: backlogAtEndOfWrites,
      backlogAfterSettleBytes: backlogAfterSettle,
      settleSeconds,
      diskBytesPerByte: last.diskWriteBytes / writtenBytes,
      peakRssMB,
      oldestRestorableSeqAfter: after.oldestRestorable.seq,
      verifyExitCode: verify.code,
      serveWarnings: [...warnings],
      points: checked,
      samples,
    }];
  } finally {
    await release?.().catch(() => undefined);
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes of the files in a directory (a file removed between list and stat is left out). */
function dirBytes(path: string): number {
  let bytes = 0;
  for (const name of readdirSync(path)) {
    try {
      bytes += statSync(join(path, name)).size;
    } catch {
      // retired meanwhile
    }
  }
  return bytes;
}


export function printLifecycle(rows: LifecycleRow[]): void {
  const f = (n: number | null, digits = 0) => fixed(n, digits);
  const mib = (n: number) => f(n / MiB);
  console.table(rows.map((r) => ({
    workload: r.workload,
    'write s': f(r.writeSeconds),
    'written GB (× capacity)': `${f(r.writtenBytes / 1e9, 1)} (${f(r.writtenBytes / r.capacityBytes, 1)}×)`,
    'capture MB/s': f(r.captureMBps),
    'consolidation MB/s read (writing) / written': `${f(r.consolidationReadMBps)} (${f(r.consolidationReadMBpsWriting)}) / ${f(r.consolidationWrittenMBps)}`,
    'history max / capacity MiB': `${mib(r.historyMaxBytes)} / ${mib(r.capacityBytes)} (${r.underCapacity ? 'under' : 'OVER'})`,
    'lag max / bound MiB': `${mib(r.lagMaxBytes)} / ${mib(r.lagBoundBytes)} (${r.lagBounded ? 'bounded' : 'OVER'})`,
    'backlog max / end of writes / settled MiB': `${mib(r.backlogMaxBytes)} / ${mib(r.backlogAtEndOfWritesBytes)} / ${mib(r.backlogAfterSettleBytes)}`,
    'disk bytes/byte': f(r.diskBytesPerByte, 2),
    'peak RSS MB': f(r.peakRssMB),
    verify: r.verifyExitCode === 0 ? 'ok' : `exit ${r.verifyExitCode}`,
  })));
  for (const r of rows) {
    console.table(r.points.map((p, i) => ({
      point: i + 1,
      'after write s': f(p.writeSeconds, 1),
      seq: p.seq,
      time: p.time,
      exact: p.exact ? 'yes' : 'no',
      'serving: by seq / by time': `${verdict(p.during.seq)} / ${verdict(p.during.time)}`,
      'after stop: by seq / by time': `${verdict(p.after.seq)} / ${verdict(p.after.time)}`,
    })));
    if (r.serveWarnings.length > 0) console.log(`serve warned: ${r.serveWarnings.join(' | ')}`);
  }
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const rows = await benchLifecycle({
    quick: args.includes('--quick'),
    seconds: arg('--seconds') ? Number(arg('--seconds')) : undefined,
    capacityBytes: arg('--capacity') ? Number(arg('--capacity')) : undefined,
    retain: arg('--retain'),
    rateMBps: arg('--rate') ? Number(arg('--rate')) : undefined,
  });
  printLifecycle(rows);
  const out = arg('--json-out');
  if (out) writeFileSync(out, JSON.stringify(rows, null, 2) + '\n');
}
