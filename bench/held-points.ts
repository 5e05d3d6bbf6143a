// The correctness half of the lifecycle bench: a point read over NBD, then restored. While fio is
// stopped, the whole volume is read through `rewind serve` with nbdcopy; `rewind status` before and
// after the read gives the point it shows (exact only when no write came in between). That point is
// restored by seq and by time with `rewind restore`, and each restore is compared byte for byte with
// what NBD read. A point the store no longer holds (retired by the policy or the capacity) is
// reported as retired, with the point `--nearest` gives instead.
import { spawn } from 'node:child_process';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { rewindBin } from './servers.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the sampler keeps sampling meanwhile). */
export function exec(cmd: string, args: string[]): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
}

export const rewind = (...args: string[]) => exec(process.execPath, [rewindBin, ...args]);

export async function statusOf(store: string): Promise<{ lastSeq: number; lastTime: string | null; oldestRestorable: { seq: number; time: string } }> {
  const r = await rewind('status', store, '--json');
  if (r.code !== 0) throw new Error(`rewind status exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/** Where two files first differ (null: same bytes, same length). */
export async function firstDifference(a: string, b: string): Promise<number | null> {
  const CHUNK = 16 * 2 ** 20;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.alloc(CHUNK);
    const bb = Buffer.alloc(CHUNK);
    for (let pos = 0; ; pos += CHUNK) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, CHUNK, pos), fb.read(bb, 0, CHUNK, pos)]);
      const n = Math.min(ra.bytesRead, rb.bytesRead);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) {
        let i = 0;
        while (ba[i] === bb[i]) i++;
        return pos + i;
      }
      if (ra.bytesRead !== rb.bytesRead) return pos + n;
      if (n === 0) return null;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** A point read over NBD: the state after write `seq`, stamped `time`. */
export interface ReadPoint {
  /** Seconds fio had written when the point was read. */
  writeSeconds: number;
  seq: number;
  time: string;
  /** No write came in while NBD read (lastSeq the same before and after). */
  exact: boolean;
  nbdSeconds: number;
  /** The file NBD read (removed at the end of the run). */
  file: string;
}

export async function readPoint(store: string, uri: string, file: string, writeSeconds: number): Promise<ReadPoint> {
  const before = await statusOf(store);
  const t0 = performance.now();
  const copy = await exec('nbdcopy', ['--flush', uri, file]);
  if (copy.code !== 0) throw new Error(`nbdcopy exited ${copy.code}: ${copy.stderr.trim()}`);
  const nbdSeconds = (performance.now() - t0) / 1000;
  const after = await statusOf(store);
  if (before.lastTime === null) throw new Error('no write captured before the point was read');
  return { writeSeconds, seq: before.lastSeq, time: before.lastTime, exact: before.lastSeq === after.lastSeq, nbdSeconds, file };
}

export interface Verdict {
  outcome: 'pass' | 'fail' | 'retired' | 'error' | 'not tried';
  /** The point restored (for `retired`: the one --nearest gave, null when none is held at or before). */
  restoredSeq: number | null;
  /** First differing offset on `fail`; the error on `retired` (no nearest) or `error`. */
  detail?: string;
}

/** Restores `point` by seq or by time to a scratch file in `dir` and compares it with what NBD read. */
export async function restoreAndCompare(store: string, volume: string, point: ReadPoint, by: 'seq' | 'time', dir: string): Promise<Verdict> {
  const out = join(dir, `restore-${by}.img`);
  const target = by === 'seq' ? ['--seq', String(point.seq)] : ['--time', point.time];
  const restore = (...extra: string[]) => rewind('restore', store, '--volume', volume, ...target, '--out', out, '--json', ...extra);
  try {
    const r = await restore();
    if (r.code === 0) {
      const restoredSeq = (JSON.parse(r.stdout) as { seq: number }).seq;
      const diff = await firstDifference(point.file, out);
      if (diff === null && restoredSeq === point.seq) return { outcome: 'pass', restoredSeq };
      return { outcome: 'fail', restoredSeq, detail: diff === null ? `restored seq ${restoredSeq}, not ${point.seq}` : `first difference at byte ${diff}` };
    }
    // Exit 2: a target the store no longer holds (any other code is a failure of the restore).
    if (r.code !== 2) return { outcome: 'error', restoredSeq: null, detail: `exit ${r.code}: ${r.stderr.trim().split('\n')[0]}` };
    const near = await restore('--nearest');
    if (near.code === 0) return { outcome: 'retired', restoredSeq: (JSON.parse(near.stdout) as { seq: number }).seq };
    return { outcome: 'retired', restoredSeq: null, detail: near.stderr.trim().split('\n')[0] };
  } finally {
    await rm(out, { force: true });
  }
}

/**
 * Opens the read-only view `<volume>@seq=<N>` over NBD and keeps the connection open until released:
 * the view leases the point, so the writer neither consolidates it away nor retires what it needs.
 */
export async function holdView(uri: string): Promise<() => Promise<void>> {
  // nbdsh runs `python3`: the system one has the nbd module (a python3 earlier on PATH may not).
  const env = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` };
  const child = spawn('nbdsh', ['-u', uri, '-c', 'import sys\nprint("ready", flush=True)\nsys.stdin.read()'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  const ready = new Promise<boolean>((r) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && r(true)));
  if (!(await Promise.race([ready, exited.then(() => false)]))) throw new Error(`nbdsh could not open ${uri}: ${stderr.trim()}`);
  return async () => {
    child.stdin.end();
    const code = await exited;
    if (code !== 0) throw new Error(`nbdsh holding ${uri} exited ${code}: ${stderr.trim()}`);
  };
}
