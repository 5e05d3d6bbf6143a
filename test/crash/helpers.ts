// Shared set-up for the crash, fault and hostile-client tests (GitHub issue 5): a storage wrapper
// that injects disk errors, child processes with hard timeouts, `rewind serve` as a child that can
// be killed with SIGKILL, and known block patterns that say which write put them there.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.REWIND_BIN ?? path.join(REPO, 'bin', 'rewind.js');
export const CHILD_TIMEOUT_MS = 20_000;

// NBD protocol error values (proto.md).
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;

// ---- faults: see test/helpers/faulty-storage.ts ----

export { FaultyStorage, type Fault } from '../helpers/faulty-storage.js';

// ---- temporary directories and child processes ---------------------------------------------------

const dirs: string[] = [];
const children = new Set<ChildProcess>();

export function tempDir(prefix = 'rewind-crash-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** For afterEach: SIGKILL every child still running. */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command with a hard timeout (SIGKILL); never rejects. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? CHILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + String(err), ms: Date.now() - t0 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

export function ok(r: Ran): Ran {
  if (r.code !== 0) throw new Error(`exit ${r.code} ${r.signal ?? ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

export function rewind(args: string[], timeoutMs = CHILD_TIMEOUT_MS): Promise<Ran> {
  return run(process.execPath, [BIN, ...args], { timeoutMs });
}

/** nbdsh runs `python3`; the system one has the nbd module (a pyenv one on PATH may not). */
export const nbdshEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` });

/** nbd:// URI with the export name percent-encoded ('@', '=' and ':' included). */
export function uri(port: number, name: string): string {
  return `nbd://127.0.0.1:${port}/${encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

export interface Served {
  proc: ChildProcess;
  port: number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const SERVING = /rewind: serving .* on nbd:\/\/127\.0\.0\.1:(\d+)/;

/**
 * `rewind serve <store> --listen 127.0.0.1:0`: the kernel picks a free port and the server names it
 * in its "serving" line, so no other process can take the port in between. Killed by killChildren().
 */
export async function startServe(store: string, extra: string[] = [], waitMs = 15_000): Promise<Served> {
  const proc = spawn(process.execPath, [BIN, 'serve', store, '--listen', '127.0.0.1:0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let err = '';
  proc.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    }),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rewind serve printed no "serving" line within ${waitMs} ms; stderr: ${err}`)), waitMs);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = SERVING.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`rewind serve exited (${code ?? signal}) before serving; stderr: ${err}`));
    });
  });
  return { proc, port, stderr: () => err, exited };
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- known patterns -------------------------------------------------------------------------------

export const BLOCK = 4096;
const PATTERN_MAGIC = 0x52574e44; // 'RWND'

/**
 * The 4 KiB block `block` as write number `write` (from 1) leaves it: a header naming both, then
 * bytes derived from them, so a block read back says which write put it there (0: never written).
 */
export function patternBlock(write: number, block: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  b.writeUInt32LE(PATTERN_MAGIC, 0);
  b.writeUInt32LE(write, 4);
  b.writeUInt32LE(block, 8);
  let x = (write * 2654435761) ^ (block * 40503) ^ 0x9e3779b9;
  for (let i = 12; i < BLOCK; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeInt32LE(x | 0, i);
  }
  return b;
}

export function patternWrite(write: number, firstBlock: number, blocks: number): Buffer {
  return Buffer.concat(Array.from({ length: blocks }, (_, i) => patternBlock(write, firstBlock + i)));
}

/** Which write left this block (0 for zeroes); throws if it is neither zeroes nor an exact pattern. */
export function identifyBlock(buf: Buffer, block: number): number {
  if (buf.every((x) => x === 0)) return 0;
  const write = buf.readUInt32LE(4);
  if (buf.readUInt32LE(0) !== PATTERN_MAGIC || buf.readUInt32LE(8) !== block || !buf.equals(patternBlock(write, block))) {
    throw new Error(`block ${block} holds neither zeroes nor a written pattern (header ${buf.subarray(0, 12).toString('hex')})`);
  }
  return write;
}

export interface PlannedWrite {
  /** 1-based, in the order sent on one connection (which is the order the server captures them). */
  n: number;
  block: number;
  blocks: number;
}

/**
 * Given which write each block holds, the range of K such that the region equals "the first K
 * writes applied in order" ([lo, hi], empty if lo > hi). Block b holding write w means K >= w and
 * K < the next write after w touching b.
 */
export function consistentPrefix(holders: number[], writes: PlannedWrite[], totalWrites: number): { lo: number; hi: number } {
  const touching = new Map<number, number[]>();
  for (const w of writes) for (let b = w.block; b < w.block + w.blocks; b++) (touching.get(b) ?? touching.set(b, []).get(b)!).push(w.n);
  let lo = 0;
  let hi = totalWrites;
  holders.forEach((w, b) => {
    const list = touching.get(b) ?? [];
    if (w !== 0 && !list.includes(w)) throw new Error(`block ${b} holds write ${w}, which never touched it`);
    const next = list.find((n) => n > w);
    lo = Math.max(lo, w);
    if (next !== undefined) hi = Math.min(hi, next - 1);
  });
  return { lo, hi };
}
