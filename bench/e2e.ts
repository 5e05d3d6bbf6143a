// End to end: fio's nbd engine against `rewind serve` (the real bin, a child process, a fresh store
// with one 1 GiB volume and the default window policy) and against nbdkit's file plugin on a sparse
// file of the same size, alternating in one run (rewind, nbdkit, rewind, nbdkit, ...); the median of
// the rounds is reported. Also the NBD protocol layer alone: rewind's server over its in-memory
// provider (a child process too) against nbdkit's memory plugin, alternating the same way.
// After each rewind run: peak RSS of the serve process (VmHWM) and the lag, the time until
// `rewind status --json` reports appliedSeq == lastSeq.
//
// Run alone: npm run build && node dist/bench/e2e.js [--quick] [--rounds N] [--seconds S] [--cpu-prof DIR]
//   [--only 4k|64k] [--plain] [--store-only] [--memory-only] [--json]

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMain } from './main-module.js';
import { cpuUs, ensureTools, freePort, ioWriteBytes, rewindBin, root, settleDisk, stop, threadCpuPerWrite, threadCpuUs, vmHwmMB, waitForPort, REWIND_NODE_FLAGS } from './servers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
import { fixed } from './format.js';

export interface E2EWorkload {
  name: string;
  rw: 'randwrite' | 'write';
  bs: string;
  iodepth: number;
  /**
   * A flushing client: fio's `--fsync=N`. At QD16 with N = 16 fio's nbd engine sends 16 writes and
   * then a FLUSH from every slot of its queue (counted in serve: one FLUSH per write, 31,984 of each).
   */
  fsync?: number;
  /**
   * Every write with NBD_CMD_FLAG_FUA: fio's nbd engine cannot, so a libnbd (Python) client sends
   * them (4 KiB random writes at this iodepth; `rw` and `bs` must say so).
   */
  fua?: boolean;
  /** No memory pair (the protocol layer alone says nothing about flushes). */
  storeOnly?: boolean;
}

export interface E2ERun {
  server: string;
  iops: number;
  mbps: number;
  /** fio's error (0: none). */
  error: number;
  /** CPU time of the server process (all its threads) per write while fio ran, microseconds. */
  cpuUsPerWrite: number;
  /** CPU used by fio itself (user + system), percent of one core. */
  fioCpuPct: number;
  /**
   * Bytes the server made dirty in the page cache (bound for the disk: /proc/PID/io write_bytes)
   * per byte fio wrote, while fio ran (and, for rewind, until applied).
   */
  writeAmp: number;
  /** rewind only. */
  peakRssMB?: number;
  lagMs?: number;
  lastSeq?: number;
  /** rewind only: CPU per write spent after fio ended, until the replica caught up. */
  cpuUsPerWriteAfter?: number;
  /** rewind only: CPU per write of each thread (by name, bench/servers.ts threadCpuUs) from fio's start until applied. */
  threadCpuUs?: Record<string, number>;
}

export interface E2ERow {
  workload: string;
  /** Which pair of servers: rewind serve vs nbdkit file, or rewind's NBD layer (memory) vs nbdkit memory. */
  pair: 'store' | 'memory';
  rewindIops: number;
  nbdkitIops: number;
  ratio: number;
  rewindMBps: number;
  nbdkitMBps: number;
  /** Server CPU per write (median), microseconds: rewind's while fio ran, and after until applied. */
  rewindCpuUs: number;
  rewindCpuUsAfter: number | null;
  nbdkitCpuUs: number;
  /** Disk-bound bytes per byte written (median). */
  rewindWriteAmp: number;
  nbdkitWriteAmp: number;
  /** Median over the rounds (store pair only). */
  peakRssMB: number | null;
  lagMs: number | null;
  errors: number;
  rounds: { rewind: E2ERun; nbdkit: E2ERun }[];
  goalMet: boolean;
}

export interface E2EOptions {
  quick?: boolean;
  rounds?: number;
  seconds?: number;
  /** Runs `rewind serve` with --cpu-prof into this directory. */
  cpuProfDir?: string;
  /** Skip the memory pair. */
  storeOnly?: boolean;
  /** Only the memory pair (the NBD protocol layer). */
  memoryOnly?: boolean;
  workloads?: E2EWorkload[];
  log?: (msg: string) => void;
}

export const E2E_WORKLOADS: E2EWorkload[] = [
  { name: '4 KiB random write, QD16', rw: 'randwrite', bs: '4k', iodepth: 16 },
  { name: '64 KiB sequential write, QD4', rw: 'write', bs: '64k', iodepth: 4 },
  { name: '4 KiB random write, QD16, flushing (fio --fsync=16)', rw: 'randwrite', bs: '4k', iodepth: 16, fsync: 16, storeOnly: true },
  { name: '4 KiB random write, QD16, every write FUA', rw: 'randwrite', bs: '4k', iodepth: 16, fua: true, storeOnly: true },
];

const VOLUME_BYTES = 2 ** 30;
/** How long to wait for the replica to catch up after fio ends before giving up (lag n/a). */
const LAG_WAIT_MS = 60_000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Runs fio against the server `pid`, measuring the server's CPU while fio runs. */
function fioMeasured(uri: string, w: E2EWorkload, seconds: number, pid: number) {
  const c0 = cpuUs(pid);
  const b0 = ioWriteBytes(pid);
  const r = fio(uri, w, seconds);
  const c1 = cpuUs(pid);
  return { ...r, cpuUsPerWrite: (c1 - c0) / r.writes, ioBytesAtStart: b0, writeAmp: (ioWriteBytes(pid) - b0) / r.bytes };
}

function fio(uri: string, w: E2EWorkload, seconds: number): { iops: number; mbps: number; error: number; fioCpuPct: number; writes: number; bytes: number } {
  if (w.fua) return fuaClient(uri, w, seconds);
  const args = [
    '--name=e2e', '--ioengine=nbd', `--uri=${uri}`, `--rw=${w.rw}`, `--bs=${w.bs}`, `--iodepth=${w.iodepth}`,
    `--runtime=${seconds}`, '--time_based', '--output-format=json', ...(w.fsync ? [`--fsync=${w.fsync}`] : []),
  ];
  const r = spawnSync('fio', args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, timeout: (seconds + 60) * 1000 });
  const out = r.stdout ?? '';
  const at = out.indexOf('{'); // "fio: connected to NBD server" comes first
  if (at < 0) throw new Error(`fio printed no JSON (status ${r.status}): ${(r.stderr ?? '').slice(0, 500)}`);
  const job = JSON.parse(out.slice(at)).jobs[0];
  return {
    iops: job.write.iops, mbps: job.write.bw_bytes / 1e6, error: job.error ?? 0,
    fioCpuPct: (job.usr_cpu ?? NaN) + (job.sys_cpu ?? NaN), writes: job.write.total_ios, bytes: job.write.io_bytes,
  };
}

/** The FUA client: libnbd's Python binding, `iodepth` asynchronous 4 KiB FUA writes at random block offsets. */
const FUA_CLIENT = `
import nbd, sys, time, random
uri, seconds, depth = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD()
h.connect_uri(uri)
assert h.can_fua(), 'the server does not support FUA'
blocks = h.get_size() // 4096
buf = nbd.Buffer(4096)
rand = random.Random(1)
s = {'inflight': 0, 'done': 0, 'errors': 0}
def done(err):
    s['inflight'] -= 1
    s['done'] += 1
    s['errors'] += err.value != 0
    return 1
t0 = time.monotonic()
end = t0 + seconds
while True:
    now = time.monotonic()
    while s['inflight'] < depth and now < end:
        h.aio_pwrite(buf, rand.randrange(blocks) * 4096, completion=done, flags=nbd.CMD_FLAG_FUA)
        s['inflight'] += 1
    if s['inflight'] == 0:
        break
    h.poll(-1)
print('{"writes": %d, "seconds": %f, "errors": %d}' % (s['done'], time.monotonic() - t0, s['errors']))
h.shutdown()
`;

/** A Python that has libnbd's binding (Debian's python3-libnbd is for the system Python, which PATH may not lead to first). */
function pythonWithNbd(): string {
  for (const py of ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import nbd'], { stdio: 'ignore' }).status === 0) return py;
  }
  throw new Error('no python3 with the nbd module (Debian package python3-libnbd)');
}

function fuaClient(uri: string, w: E2EWorkload, seconds: number): ReturnType<typeof fio> {
  const r = spawnSync(pythonWithNbd(), ['-c', FUA_CLIENT, uri, String(seconds), String(w.iodepth)], { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
  const at = (r.stdout ?? '').indexOf('{');
  if (at < 0) throw new Error(`the FUA client printed nothing (status ${r.status}): ${(r.stderr ?? '').slice(0, 500)}`);
  const j = JSON.parse(r.stdout.slice(at)) as { writes: number; seconds: number; errors: number };
  return { iops: j.writes / j.seconds, mbps: (j.writes * 4096) / j.seconds / 1e6, error: j.errors, fioCpuPct: NaN, writes: j.writes, bytes: j.writes * 4096 };
}

function status(store: string): { lastSeq: number; appliedSeq: number } {
  const out = execFileSync(process.execPath, [rewindBin, 'status', store, '--json'], { encoding: 'utf8' });
  return JSON.parse(out);
}

async function runRewindServe(w: E2EWorkload, seconds: number, opts: E2EOptions): Promise<E2ERun> {
  settleDisk();
  const dir = mkdtempSync(join(tmpdir(), 'rewind-e2e-'));
  const store = join(dir, 'store');
  const port = await freePort();
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, `--cpu-prof-name=serve-${w.bs}-${w.iodepth}-${Date.now()}.cpuprofile`] : [];
  const child = spawn(process.execPath, [...REWIND_NODE_FLAGS, ...nodeArgs, rewindBin, 'serve', store, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString();
  });
  try {
    await waitForPort(port, child);
    const threads0 = threadCpuUs(child.pid!);
    const r = fioMeasured(`nbd://127.0.0.1:${port}/disk0`, w, seconds, child.pid!);
    const ended = performance.now();
    const cpuEnded = cpuUs(child.pid!);
    let s = status(store);
    while (s.appliedSeq < s.lastSeq && performance.now() - ended < LAG_WAIT_MS) {
      await sleep(20);
      s = status(store);
    }
    const lagMs = s.appliedSeq >= s.lastSeq ? performance.now() - ended : NaN;
    const cpuUsPerWriteAfter = (cpuUs(child.pid!) - cpuEnded) / r.writes;
    const threads = threadCpuPerWrite(threads0, threadCpuUs(child.pid!), r.writes);
    const writeAmp = (ioWriteBytes(child.pid!) - r.ioBytesAtStart) / r.bytes;
    const peakRssMB = vmHwmMB(child.pid!);
    if (r.error !== 0 || /failed/i.test(stderr)) opts.log?.(`e2e: rewind serve reported: ${stderr.split('\n').filter((l) => /failed/i.test(l)).slice(0, 3).join(' | ')}`);
    return { server: 'rewind serve', iops: r.iops, mbps: r.mbps, error: r.error, cpuUsPerWrite: r.cpuUsPerWrite, fioCpuPct: r.fioCpuPct, writeAmp, peakRssMB, lagMs, lastSeq: s.lastSeq, cpuUsPerWriteAfter, threadCpuUs: threads };
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runChildServer(cmd: string, args: (port: number) => string[], uriPath: string, w: E2EWorkload, seconds: number, label: string): Promise<E2ERun> {
  settleDisk();
  const port = await freePort();
  // stderr ignored: the readiness probe makes nbdkit log a reset connection.
  const child = spawn(cmd, args(port), { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    await waitForPort(port, child);
    const r = fioMeasured(`nbd://127.0.0.1:${port}${uriPath}`, w, seconds, child.pid!);
    return { server: label, iops: r.iops, mbps: r.mbps, error: r.error, cpuUsPerWrite: r.cpuUsPerWrite, fioCpuPct: r.fioCpuPct, writeAmp: r.writeAmp, peakRssMB: vmHwmMB(child.pid!) };
  } finally {
    await stop(child, 5000);
  }
}

async function runNbdkitFile(w: E2EWorkload, seconds: number): Promise<E2ERun> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-e2e-nbdkit-'));
  const file = join(dir, 'disk.img');
  const fd = openSync(file, 'w');
  ftruncateSync(fd, VOLUME_BYTES);
  closeSync(fd);
  try {
    return await runChildServer('nbdkit', (p) => ['-f', '-i', '127.0.0.1', '-p', String(p), 'file', file], '/disk0', w, seconds, 'nbdkit file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const runNbdkitMemory = (w: E2EWorkload, seconds: number) =>
  runChildServer('nbdkit', (p) => ['-f', '-i', '127.0.0.1', '-p', String(p), 'memory', String(VOLUME_BYTES)], '/disk0', w, seconds, 'nbdkit memory');

const runRewindMemory = (w: E2EWorkload, seconds: number) =>
  runChildServer(process.execPath, (p) => [fileURLToPath(import.meta.url), '--serve-memory', String(p)], '/disk0', w, seconds, 'rewind nbd (memory)');

function row(workload: string, pair: 'store' | 'memory', rounds: { rewind: E2ERun; nbdkit: E2ERun }[]): E2ERow {
  const rewindIops = median(rounds.map((r) => r.rewind.iops));
  const nbdkitIops = median(rounds.map((r) => r.nbdkit.iops));
  const errors = rounds.filter((r) => r.rewind.error !== 0 || r.nbdkit.error !== 0).length;
  const ratio = rewindIops / nbdkitIops;
  return {
    workload, pair, rewindIops, nbdkitIops, ratio,
    rewindMBps: median(rounds.map((r) => r.rewind.mbps)),
    nbdkitMBps: median(rounds.map((r) => r.nbdkit.mbps)),
    rewindCpuUs: median(rounds.map((r) => r.rewind.cpuUsPerWrite)),
    rewindCpuUsAfter: pair === 'store' ? median(rounds.map((r) => r.rewind.cpuUsPerWriteAfter ?? NaN)) : null,
    nbdkitCpuUs: median(rounds.map((r) => r.nbdkit.cpuUsPerWrite)),
    rewindWriteAmp: median(rounds.map((r) => r.rewind.writeAmp)),
    nbdkitWriteAmp: median(rounds.map((r) => r.nbdkit.writeAmp)),
    peakRssMB: pair === 'store' ? median(rounds.map((r) => r.rewind.peakRssMB ?? NaN)) : null,
    lagMs: pair === 'store' ? median(rounds.map((r) => r.rewind.lagMs ?? NaN)) : null,
    errors, rounds, goalMet: errors === 0 && ratio >= 1.0,
  };
}

export async function benchE2E(opts: E2EOptions = {}): Promise<E2ERow[]> {
  const log = opts.log ?? ((m: string) => console.error(m));
  if (!ensureTools(log)) return [];
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const seconds = opts.seconds ?? (opts.quick ? 2 : 5);
  const rows: E2ERow[] = [];
  for (const w of opts.workloads ?? E2E_WORKLOADS) {
    const store: { rewind: E2ERun; nbdkit: E2ERun }[] = [];
    const memory: { rewind: E2ERun; nbdkit: E2ERun }[] = [];
    for (let i = 0; i < rounds; i++) {
      if (!opts.memoryOnly) {
        const rewind = await runRewindServe(w, seconds, { ...opts, log });
        const nbdkit = await runNbdkitFile(w, seconds);
        store.push({ rewind, nbdkit });
        const perThread = Object.entries(rewind.threadCpuUs ?? {}).map(([t, us]) => `${t} ${us.toFixed(1)}`).join(', ');
        log(`e2e: ${w.name} round ${i + 1}/${rounds}: rewind serve ${rewind.iops.toFixed(0)} IOPS (${rewind.cpuUsPerWrite.toFixed(1)} µs CPU/write, +${rewind.cpuUsPerWriteAfter?.toFixed(1)} after; fio ${rewind.fioCpuPct.toFixed(0)} % CPU; ${rewind.writeAmp.toFixed(2)} bytes to disk per byte; lag ${rewind.lagMs?.toFixed(0)} ms, RSS ${rewind.peakRssMB?.toFixed(0)} MB), nbdkit file ${nbdkit.iops.toFixed(0)} IOPS (${nbdkit.cpuUsPerWrite.toFixed(1)} µs CPU/write; fio ${nbdkit.fioCpuPct.toFixed(0)} % CPU; ${nbdkit.writeAmp.toFixed(2)} bytes to disk per byte); rewind µs/write by thread until applied: ${perThread}`);
      }
      if (!opts.storeOnly && !w.storeOnly) {
        const rm = await runRewindMemory(w, seconds);
        const nm = await runNbdkitMemory(w, seconds);
        memory.push({ rewind: rm, nbdkit: nm });
        log(`e2e: ${w.name} round ${i + 1}/${rounds}: rewind nbd (memory) ${rm.iops.toFixed(0)} IOPS (${rm.cpuUsPerWrite.toFixed(1)} µs CPU/write), nbdkit memory ${nm.iops.toFixed(0)} IOPS (${nm.cpuUsPerWrite.toFixed(1)} µs CPU/write)`);
      }
    }
    if (store.length > 0) rows.push(row(w.name, 'store', store));
    if (memory.length > 0) rows.push(row(w.name, 'memory', memory));
  }
  return rows;
}

export function printE2E(rows: E2ERow[]): void {
  const f = (n: number | null, digits = 0) => fixed(n, digits);
  console.table(rows.map((r) => ({
    workload: r.workload,
    servers: r.pair === 'store' ? 'rewind serve / nbdkit file' : 'rewind nbd (memory) / nbdkit memory',
    'rewind IOPS': f(r.rewindIops),
    'nbdkit IOPS': f(r.nbdkitIops),
    ratio: f(r.ratio, 2),
    'rewind MB/s': f(r.rewindMBps),
    'CPU µs/write rewind (+after) / nbdkit': `${f(r.rewindCpuUs, 1)}${r.rewindCpuUsAfter !== null ? ` (+${f(r.rewindCpuUsAfter, 1)})` : ''} / ${f(r.nbdkitCpuUs, 1)}`,
    'bytes to disk per byte rewind / nbdkit': `${f(r.rewindWriteAmp, 2)} / ${f(r.nbdkitWriteAmp, 2)}`,
    'peak RSS MB': f(r.peakRssMB),
    'lag ms': f(r.lagMs),
    errors: r.errors,
    'goal ratio>=1': r.goalMet ? 'met' : 'not met',
  })));
}

/** `--serve-memory PORT`: rewind's NBD server over its in-memory provider, one 1 GiB export "disk0". */
async function serveMemory(port: number): Promise<void> {
  const { startNbdServer } = await import('../src/nbd/server.js');
  const { MemoryExportProvider } = await import('../src/nbd/memory-export.js');
  const provider = new MemoryExportProvider({ disk0: { size: VOLUME_BYTES } });
  const server = await startNbdServer({ provider, listen: { host: '127.0.0.1', port } });
  const done = () => void server.close({ graceful: false }).then(() => process.exit(0));
  process.on('SIGTERM', done);
  process.on('SIGINT', done);
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  if (args.includes('--serve-memory')) {
    await serveMemory(Number(arg('--serve-memory')));
  } else {
    const only = arg('--only');
    const rows = await benchE2E({
      quick: args.includes('--quick'),
      rounds: arg('--rounds') ? Number(arg('--rounds')) : undefined,
      seconds: arg('--seconds') ? Number(arg('--seconds')) : undefined,
      cpuProfDir: arg('--cpu-prof'),
      storeOnly: args.includes('--store-only'),
      memoryOnly: args.includes('--memory-only'),
      // --plain: without the flushing and FUA clients.
      workloads: E2E_WORKLOADS.filter((w) => (!only || w.bs === only) && (!args.includes('--plain') || (!w.fsync && !w.fua))),
    });
    printE2E(rows);
    if (args.includes('--json')) console.log(JSON.stringify(rows, null, 2));
  }
}
