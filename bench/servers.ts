// Helpers the end-to-end and sustained benchmarks share: where the rewind bin is, the Debian tools
// they need, starting and stopping server processes, and what /proc says about a process.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (dist/bench/e2e.js or bench/e2e.ts). */
export const root = resolve(here, here.includes(`${join('dist', 'bench')}`) ? '../..' : '..');
export const rewindBin = join(root, 'bin', 'rewind.js');
/** How `rewind` runs node (bin/rewind.js's shebang): a bench that spawns it measures the same process. */
export const REWIND_NODE_FLAGS = ['--max-semi-space-size=4'];

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Installs fio and nbdkit from Debian when they are missing (root only). */
export function ensureTools(log: (m: string) => void = console.error): boolean {
  const missing = ['fio', 'nbdkit'].filter((c) => !have(c));
  if (missing.length === 0) return true;
  if (process.getuid?.() !== 0) {
    log(`e2e: ${missing.join(', ')} missing and not root: skipping`);
    return false;
  }
  log(`e2e: installing ${missing.join(' ')}`);
  spawnSync('apt-get', ['update'], { stdio: 'ignore' });
  spawnSync('apt-get', ['install', '-y', ...missing], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return ['fio', 'nbdkit'].every(have);
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

export async function waitForPort(port: number, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before listening on ${port}`);
    const ok = await new Promise<boolean>((res) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        res(true);
      });
      c.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** CPU time (user + system, all threads) a process has used so far, microseconds. */
export function cpuUs(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
/**
 * CPU time (user + system) of each live thread of a process so far, microseconds, summed by thread
 * name: "main" for the event loop (tid = pid), the name a thread gave itself (rewind's workers name
 * themselves: src/thread-name.ts), "other" for unnamed ones (libuv's I/O pool, V8's GC and compiler).
 */
export function threadCpuUs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const label = Number(tid) === pid ? 'main' : comm === 'node' ? 'other' : comm;
      out[label] = (out[label] ?? 0) + ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** Per-thread CPU between two threadCpuUs samples, per write (µs), largest first. */
export function threadCpuPerWrite(before: Record<string, number>, after: Record<string, number>, writes: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [label, us] of Object.entries(after)) out[label] = (us - (before[label] ?? 0)) / writes;
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

/** Bytes the process has caused to be written to storage so far (dirtied pages, direct writes). */
export function ioWriteBytes(pid: number): number {
  try {
    const m = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Linux's USER_HZ, which /proc reports times in. */
const CLOCK_TICKS = 100;

export function vmHwmMB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Writes back what earlier runs left dirty, so no run pays for the one before it (the page cache
 * holds gigabytes after a store's run, and its writeback would compete with the next server).
 */
export function settleDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

/**
 * The disk's sequential write rate, MB/s: `bytes` appended in 1 MiB writes to a new file in `dir`
 * (the file system the stores use), then one fdatasync, timed together (what `dd conv=fdatasync` does).
 */
export function diskWriteMBps(dir: string, bytes = 2 ** 30): number {
  const file = `${dir}/disk-rate.tmp`;
  const chunk = Buffer.alloc(2 ** 20, 0x5a);
  settleDisk();
  const fd = openSync(file, 'w');
  try {
    const t0 = performance.now();
    for (let at = 0; at < bytes; at += chunk.byteLength) writeSync(fd, chunk, 0, chunk.byteLength, at);
    fdatasyncSync(fd);
    return bytes / 1e6 / ((performance.now() - t0) / 1000);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

/** The rewind_* samples of serve's `/metrics` page on `port`, labelled ones summed per name. */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(rewind_[a-z_]+|process_resident_memory_bytes)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
  }
  return out;
}
