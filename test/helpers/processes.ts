// Child processes for end-to-end tests: the real bin (bin/rewind.js, which runs dist/), `rewind
// serve` as a long-running child, and external NBD tools. Every child has a hard timeout; every
// server is stopped (SIGTERM, then SIGKILL) and every tool killed by stopAll() in afterEach.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The bin under test; REWIND_BIN points at another build (e.g. a clean checkout's). */
export const BIN = process.env.REWIND_BIN ?? path.join(REPO, 'bin', 'rewind.js');
export const CHILD_TIMEOUT_MS = 20_000;

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds the command ran. */
  ms: number;
}

const children = new Set<ChildProcess>();
const servers = new Set<Served>();
const dirs: string[] = [];

/** A fresh temporary directory, removed by removeTempDirs(). */
export function tempDir(prefix = 'rewind-serve-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Runs a command with a hard timeout (SIGKILL); never rejects. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
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

/** `rewind <args>` through the real bin. */
/** The `rewind` command (REWIND_DEBUG cleared, so failures print the message a user sees, no stack). */
export function rewind(args: string[], timeoutMs = CHILD_TIMEOUT_MS): Promise<Ran> {
  return run(process.execPath, [BIN, ...args], { timeoutMs, env: { ...process.env, REWIND_DEBUG: '' } });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Served {
  proc: ChildProcess;
  port: number;
  store: string;
  /** Everything the server wrote on stderr so far. */
  stderr(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM; SIGKILL if still running after killAfterMs. */
  stop(killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const SERVING = /rewind: serving .* on nbd:\/\/127\.0\.0\.1:(\d+)/;

/**
 * Starts `rewind serve <store> --listen 127.0.0.1:0 [extra]` and waits for its "serving" line. Port
 * 0 lets the kernel pick a free port; the server reports the one it got in that line, so there is
 * no window in which another process can take it.
 */
export async function startServe(store: string, extra: string[] = [], waitMs = 15_000): Promise<Served> {
  const proc = spawn(process.execPath, [BIN, 'serve', store, '--listen', '127.0.0.1:0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const served: Served = {
    proc,
    port: -1,
    store,
    stderr: () => err,
    exited,
    async stop(killAfterMs = 10_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
        const r = await exited;
        clearTimeout(t);
        servers.delete(served);
        return r;
      }
      servers.delete(served);
      return exited;
    },
  };
  servers.add(served);
  served.port = await new Promise<number>((resolve, reject) => {
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
      reject(new Error(`rewind serve exited (${code ?? signal}) before serving; stdout: ${out} stderr: ${err}`));
    });
  });
  return served;
}

/** For afterEach: if the test failed, prints what each running server wrote on stderr. */
export function dumpOnFailure(ctx: { task: { name: string; result?: { state?: string } } }): void {
  if (ctx.task.result?.state !== 'fail') return;
  for (const s of servers) console.error(`rewind serve ${s.store} stderr (test "${ctx.task.name}" failed):\n${s.stderr().slice(-8000)}`);
}

/**
 * For afterEach: stops every server still running and kills every tool still running. Given the
 * test context of a failed test, prints what each server wrote on stderr.
 */
export async function stopAll(ctx?: { task: { name: string; result?: { state?: string } } }): Promise<void> {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  const all = [...servers];
  if (ctx) dumpOnFailure(ctx);
  await Promise.all(all.map((s) => s.stop(5_000)));
}

/** nbd:// URI; the export name is percent-encoded ('@', '=' and ':' included). */
export function uri(port: number, name: string): string {
  return `nbd://127.0.0.1:${port}/${encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** nbdsh runs `python3`; prefer the system one, which has the nbd module. */
export const nbdshEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` });

/** A long-running child with piped stdin/stdout, killed by stopAll() or after timeoutMs. */
export function startChild(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): {
  proc: ChildProcess;
  /** Resolves with the first stdout line matching re (rejects on exit or after waitMs). */
  line(re: RegExp, waitMs?: number): Promise<RegExpExecArray>;
  output(): { stdout: string; stderr: string };
} {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  let exited = false;
  const wakers = new Set<() => void>();
  const wake = () => wakers.forEach((w) => w());
  proc.stdout!.on('data', (d: Buffer) => ((stdout += d.toString()), wake()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? CHILD_TIMEOUT_MS);
  proc.on('error', () => undefined);
  proc.on('close', () => {
    exited = true;
    clearTimeout(timer);
    children.delete(proc);
    wake();
  });
  return {
    proc,
    output: () => ({ stdout, stderr }),
    line(re, waitMs = CHILD_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => done(new Error(`no line matching ${re} within ${waitMs} ms; stdout: ${stdout} stderr: ${stderr}`)), waitMs);
        const check = () => {
          const m = new RegExp(re.source, re.flags.includes('m') ? re.flags : `${re.flags}m`).exec(stdout);
          if (m) done(null, m);
          else if (exited) done(new Error(`exited (${proc.exitCode ?? proc.signalCode}) with no line matching ${re}; stdout: ${stdout} stderr: ${stderr}`));
        };
        const done = (err: Error | null, m?: RegExpExecArray) => {
          clearTimeout(t);
          wakers.delete(check);
          if (err) reject(err);
          else resolve(m!);
        };
        wakers.add(check);
        check();
      });
    },
  };
}
